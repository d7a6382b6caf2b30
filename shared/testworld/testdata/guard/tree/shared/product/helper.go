package product

import "testing"

func Helper(t *testing.T) { t.Helper() }
