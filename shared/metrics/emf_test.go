package metrics

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEMFWrite(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)
	var buf bytes.Buffer
	err := EMF{
		Namespace:     "lpmtls",
		Timestamp:     at,
		DimensionSets: [][]string{{"AccountId"}, {}},
		Dimensions:    map[string]string{"AccountId": "90412233"},
		Metrics:       []Metric{{Name: "A", Unit: "Count", Value: 2}, {Name: "B", Unit: "Count", Value: 0}},
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
	d := EMF{
		Namespace:     "ns",
		Timestamp:     time.UnixMilli(1),
		DimensionSets: [][]string{{"FunctionName"}},
		Dimensions:    map[string]string{"FunctionName": "f", "Outcome": "delivered"},
		Metrics: []Metric{
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

func TestEMFRefusesWhatCloudWatchWouldDrop(t *testing.T) {
	ok := func() EMF {
		return EMF{Namespace: "n", DimensionSets: [][]string{{"D"}}, Dimensions: map[string]string{"D": "v"},
			Metrics: []Metric{{Name: "M", Value: 1}}}
	}
	cases := []struct {
		name   string
		change func(*EMF)
	}{
		{"no namespace", func(d *EMF) { d.Namespace = "" }},
		{"no metrics", func(d *EMF) { d.Metrics = nil }},
		{"dimension without value", func(d *EMF) { d.DimensionSets = [][]string{{"E"}} }},
		{"metric dimension without value", func(d *EMF) { d.Metrics[0].DimensionSets = [][]string{{"E"}} }},
		{"metric named like a dimension", func(d *EMF) { d.Metrics = []Metric{{Name: "D"}} }},
		{"duplicate metric", func(d *EMF) { d.Metrics = append(d.Metrics, Metric{Name: "M"}) }},
		{"unnamed metric", func(d *EMF) { d.Metrics = []Metric{{Value: 1}} }},
		{"reserved member", func(d *EMF) { d.Properties = map[string]any{"_aws": 1} }},
		{"dimension also a property", func(d *EMF) { d.Properties = map[string]any{"D": 1} }},
		{"too many values", func(d *EMF) { d.Metrics[0].Values = make([]float64, MaxValues+1) }},
		{"not a number", func(d *EMF) { d.Metrics[0].Values = []float64{1, nan()} }},
	}
	if _, err := ok().MarshalJSON(); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ok()
			c.change(&d)
			var buf bytes.Buffer
			if err := d.Write(&buf); err == nil || buf.Len() != 0 {
				t.Fatalf("want an error and nothing written, got %v, %q", err, buf.String())
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

// The hand-written string encoding must read back as the same string as encoding/json's.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "tab\tnl\ncr\r", "\x00\x1f", "<a&b>", "é ü 日本", "\u2028\u2029", "bad\xffutf8", "\xed\xa0\x80"} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
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
