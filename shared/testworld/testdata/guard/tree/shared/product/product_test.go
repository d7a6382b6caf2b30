package product

import "testing"

func TestUpper(t *testing.T) { _ = Upper("x") }
