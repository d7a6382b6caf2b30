package emfdoc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/metrics"
)

// What metrics writes parses back the way CloudWatch reads it.
func TestEMFWrite(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)
	var buf bytes.Buffer
	err := metrics.EMF{
		Namespace:     "lpmtls",
		Timestamp:     at,
		DimensionSets: [][]string{{"AccountId"}, {}},
		Dimensions:    map[string]string{"AccountId": "90412233"},
		Metrics:       []metrics.Metric{{Name: "A", Unit: "Count", Value: 2}, {Name: "B", Unit: "Count", Value: 0}},
		Properties:    map[string]any{"checked": 2},
	}.Write(&buf)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want exactly one line, got %q", out)
	}
	d, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	cw := d.AWS.CloudWatchMetrics[0]
	if len(d.AWS.CloudWatchMetrics) != 1 || d.AWS.Timestamp != at.UnixMilli() || cw.Namespace != "lpmtls" {
		t.Fatalf("metadata: %+v", d.AWS)
	}
	if !reflect.DeepEqual(cw.Dimensions, [][]string{{"AccountId"}, {}}) {
		t.Fatalf("dimensions %v", cw.Dimensions)
	}
	if len(cw.Metrics) != 2 || cw.Metrics[0].Name != "A" || cw.Metrics[0].Unit != "Count" {
		t.Fatalf("metrics %+v", cw.Metrics)
	}
	if d.Root["A"] != 2.0 || d.Root["B"] != 0.0 || d.Root["AccountId"] != "90412233" || d.Root["checked"] != 2.0 {
		t.Fatalf("values %v", d.Root)
	}
}

// A metric with its own dimension sets gets its own directive; value arrays are samples.
func TestEMFDirectivesAndArrays(t *testing.T) {
	d := metrics.EMF{
		Namespace:     "ns",
		Timestamp:     time.UnixMilli(1),
		DimensionSets: [][]string{{"FunctionName"}},
		Dimensions:    map[string]string{"FunctionName": "f", "Outcome": "delivered"},
		Metrics: []metrics.Metric{
			{Name: "Latency", Unit: "Milliseconds", Values: []float64{1.5, 2, 30}},
			{Name: "Forwards", Unit: "Count", Value: 3, DimensionSets: [][]string{{"FunctionName", "Outcome"}, {"FunctionName"}}},
		},
	}
	b, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range doc.Series() {
		keys = append(keys, s.Key())
	}
	want := []string{"ns|Latency|FunctionName=f", "ns|Forwards|FunctionName=f,Outcome=delivered", "ns|Forwards|FunctionName=f"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("series %v, want %v\n%s", keys, want, b)
	}
	if doc.Sum("Latency") != 33.5 || doc.Sum("Forwards") != 3 {
		t.Fatalf("values %v", doc.Root)
	}
}

func TestParseRefusesInvalid(t *testing.T) {
	for name, line := range map[string]string{
		"not json":            `{`,
		"no directive":        `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`,
		"no timestamp":        `{"M":1,"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]}}`,
		"missing dimension":   `{"M":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]}}`,
		"metric not a number": `{"M":"1","_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]}}`,
		"no namespace":        `{"M":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"M"}]}]}}`,
	} {
		if _, err := Parse([]byte(line)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
