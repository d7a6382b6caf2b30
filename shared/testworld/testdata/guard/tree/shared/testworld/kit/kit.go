package kit

import "testing"

func New(t *testing.T) { t.Helper() }
