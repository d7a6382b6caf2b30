package fixture

import "testing"

func F(t *testing.T) {}
