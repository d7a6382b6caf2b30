package health

import (
	"testing"

	"github.com/lpmtls/lpmtls/shared/testworld/emfdoc"
)

// emfDoc is a written line parsed back in the EMF specification's shape.
type emfDoc struct{ emfdoc.Doc }

// parseEMF parses one line with the shared parser, which checks the specification's
// rules, and expects the single directive the health check writes.
func parseEMF(t *testing.T, line string) emfDoc {
	t.Helper()
	d, err := emfdoc.Parse([]byte(line))
	if err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	if len(d.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("want one CloudWatchMetrics directive, got %s", line)
	}
	return emfDoc{d}
}
