package e2e

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/metrics"
	"github.com/lpmtls/lpmtls/shared/testworld/emfdoc"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// The function names of one stack, as Lambda would give them (the stack name is part
// of each, so another stack's differ).
const (
	forwardName = "lpmtls-test-forward"
	mappingName = "lpmtls-test-mapping"
)

// emittedSeries runs the built functions through every forward outcome and token source
// and a health check, and returns every series their EMF lines publish: what the
// dashboard and the alarms may plot comes from the functions' own output.
func emittedSeries(t *testing.T) map[string]emfdoc.Series {
	t.Helper()
	return stackSeries(t, testenv.New(t), forwardName, mappingName)
}

// stackSeries is emittedSeries for one stack's two function names, against env.
func stackSeries(t *testing.T, env *testenv.Env, forwardName, mappingName string) map[string]emfdoc.Series {
	t.Helper()
	out := map[string]emfdoc.Series{}
	collect := func(logs string) {
		for _, line := range strings.Split(logs, "\n") {
			if !strings.Contains(line, `"_aws"`) {
				continue
			}
			d, err := emfdoc.Parse([]byte(line))
			if err != nil {
				t.Fatalf("%v\n%s", err, line)
			}
			for _, s := range d.Series() {
				out[s.Key()] = s
			}
		}
	}
	name := "AWS_LAMBDA_FUNCTION_NAME=" + forwardName
	f := env.Start(t, "forward", name)
	f.InvokeHTTP(t, forwardEvent(t, env.MappedURL))                    // delivered, login
	f.InvokeHTTP(t, forwardEvent(t, env.MappedURL))                    // delivered, memory
	f.InvokeHTTP(t, forwardEvent(t, env.Sim.TargetURL("/not-mapped"))) // permanent
	f.InvokeHTTP(t, forwardEvent(t, "http://plain.example/"))          // client_error
	env.Sim.Inject(lpsim.Fault{Op: "forward", Status: 429})
	f.InvokeHTTP(t, forwardEvent(t, env.MappedURL)) // transient
	env.Sim.Inject(lpsim.Fault{Op: "forward", Status: 403})
	env.Sim.Inject(lpsim.Fault{Op: "mapping", Status: 403}) // the bearer check: the gateway's own 403
	f.InvokeHTTP(t, forwardEvent(t, env.MappedURL))         // liveperson_auth_failed
	body, _ := json.Marshal(map[string]any{"url": env.MappedURL})
	f.Invoke(t, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: string(body), EventSource: "aws:sqs",
		EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:requests", Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}})
	collect(f.FinalLogs())

	g := env.Start(t, "forward", name) // a new instance finds the token in SSM
	g.InvokeHTTP(t, forwardEvent(t, env.MappedURL))
	collect(g.FinalLogs())

	m := env.Start(t, "mapping", "AWS_LAMBDA_FUNCTION_NAME="+mappingName)
	m.Invoke(t, map[string]any{"targets": []lp.Mapping{
		{ServiceName: testenv.ServiceName, URL: env.MappedURL},
		{ServiceName: testenv.ServiceName, URL: env.Sim.TargetURL("/not-mapped")},
	}})
	collect(m.FinalLogs())
	return out
}

// awsMetrics are the AWS-published metrics the dashboard and alarms may use, by
// namespace, with the resource type their dimension must name.
var awsMetrics = map[string]map[string]string{
	"AWS/SQS": {"ApproximateNumberOfMessagesVisible": "AWS::SQS::Queue", "ApproximateAgeOfOldestMessage": "AWS::SQS::Queue"},
}

var subVar = regexp.MustCompile(`\$\{([^}]+)\}`)

// TestDashboardPlotsWhatFunctionsEmit reads the dashboard body from template.yaml and
// checks every metric it plots, and every metric an alarm watches, against the series
// the functions wrote: same namespace, name, dimension names and values.
func TestDashboardPlotsWhatFunctionsEmit(t *testing.T) {
	tpl := loadTemplate(t)
	resources := get(t, tpl, "Resources").(map[string]any)
	namespace := get(t, tpl, "Parameters", "MetricsNamespace", "Default").(string)
	emitted := emittedSeries(t)
	var names []string
	for k := range emitted {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("emitted series:\n%s", strings.Join(names, "\n"))

	// Substitute the template's variables as CloudFormation would: the function's
	// name for Ref, a queue's logical id standing in for its name, an alarm's for its ARN.
	d := get(t, resources, "Dashboard")
	if get(t, d, "Condition") != "HasDashboard" || get(t, tpl, "Parameters", "EnableDashboard", "Default") != "true" {
		t.Fatal("dashboard not behind EnableDashboard (default true)")
	}
	src, _ := fnArg(get(t, d, "Properties", "DashboardBody"), "Fn::Sub").(string)
	var bad []string
	body := subVar.ReplaceAllStringFunc(src, func(v string) string {
		name := v[2 : len(v)-1]
		id, attr, _ := strings.Cut(name, ".")
		switch {
		case name == "MetricsNamespace":
			return namespace
		case name == "ForwardFunction":
			return forwardName
		case name == "MappingFunction":
			return mappingName
		case name == "AWS::Region":
			return "us-east-1"
		case attr == "QueueName" || attr == "Arn":
			if resources[id] == nil {
				bad = append(bad, name)
			}
			return "@" + id
		}
		bad = append(bad, name)
		return v
	})
	if len(bad) > 0 {
		t.Fatalf("dashboard references unknown variables %v", bad)
	}
	var dash struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
				Alarms  []string
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("dashboard body is not JSON: %v", err)
	}
	plotted := map[string]bool{}
	for _, w := range dash.Widgets {
		switch w.Type {
		case "alarm":
			for _, a := range w.Properties.Alarms {
				if id, _ := strings.CutPrefix(a, "@"); get(t, resources, id, "Type") != "AWS::CloudWatch::Alarm" {
					t.Errorf("%s: %s is not an alarm", w.Properties.Title, a)
				}
			}
			continue
		case "metric":
		default:
			t.Errorf("unexpected widget type %q", w.Type)
			continue
		}
		for _, m := range w.Properties.Metrics {
			if e, ok := m[0].(map[string]any); ok {
				checkSearch(t, w.Properties.Title, e["expression"], emitted, plotted)
				continue
			}
			var parts []string
			for _, p := range m {
				if s, ok := p.(string); ok {
					parts = append(parts, s)
				}
			}
			if len(parts) < 2 || len(parts)%2 != 0 {
				t.Errorf("%s: metric %v is not [namespace, name, dimension, value...]", w.Properties.Title, m)
				continue
			}
			s := emfdoc.Series{Namespace: parts[0], Name: parts[1], Dimensions: map[string]string{}}
			for i := 2; i < len(parts); i += 2 {
				s.Dimensions[parts[i]] = parts[i+1]
			}
			checkSeries(t, w.Properties.Title, s, resources, emitted)
			plotted[s.Name] = true
		}
	}

	// The alarms on lpmtls metrics, too.
	for id, r := range resources {
		if get(t, r, "Type") != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := get(t, r, "Properties").(map[string]any)
		var stats []map[string]any
		if p["MetricName"] != nil {
			stats = append(stats, p)
		}
		for _, q := range asList(p["Metrics"]) {
			if ms, ok := q.(map[string]any)["MetricStat"]; ok {
				stats = append(stats, get(t, ms, "Metric").(map[string]any))
			}
		}
		for _, st := range stats {
			s := emfdoc.Series{Name: st["MetricName"].(string), Dimensions: map[string]string{}}
			s.Namespace, _ = st["Namespace"].(string)
			if ref(st["Namespace"]) == "MetricsNamespace" {
				s.Namespace = namespace
			}
			for _, dim := range asList(st["Dimensions"]) {
				dm := dim.(map[string]any)
				v, _ := dm["Value"].(string)
				switch ref(dm["Value"]) {
				case "ForwardFunction":
					v = forwardName
				case "MappingFunction":
					v = mappingName
				case "":
				default:
					v = "@" + ref(dm["Value"])
				}
				s.Dimensions[dm["Name"].(string)] = v
			}
			checkSeries(t, "alarm "+id, s, resources, emitted)
		}
	}

	// What the issue asks the dashboard to show.
	for _, want := range []string{"Forwards", "ForwardErrors", "ForwardLatency", "GatewayLatency", "Logins", "TokenSource",
		"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "HealthCheckFailed", "MappingsConfigured", "MappingsMissing"} {
		if !plotted[want] {
			t.Errorf("the dashboard does not plot %s", want)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func checkSeries(t *testing.T, where string, s emfdoc.Series, resources map[string]any, emitted map[string]emfdoc.Series) {
	t.Helper()
	if aws, ok := awsMetrics[s.Namespace]; ok {
		typ, known := aws[s.Name]
		q := strings.TrimPrefix(s.Dimensions["QueueName"], "@")
		if !known || len(s.Dimensions) != 1 || q == "" || get(t, resources, q, "Type") != typ {
			t.Errorf("%s: %s is not a known %s metric of a queue in the template", where, s.Key(), s.Namespace)
		}
		return
	}
	if _, ok := emitted[s.Key()]; !ok {
		t.Errorf("%s: %s is not a series the functions emit", where, s.Key())
	}
	// The function's name is what keeps two stacks in one account and region apart.
	if fn := s.Dimensions[metrics.DimensionFunction]; fn != forwardName && fn != mappingName {
		t.Errorf("%s: %s selects no FunctionName of this stack", where, s.Key())
	}
}

var search = regexp.MustCompile(`^SEARCH\('\{([^}]*)\}((?:\s+\w+="[^"]*")*)',\s*'(\w+)',\s*(\d+)\)$`)
var searchTerm = regexp.MustCompile(`(\w+)="([^"]*)"`)

// checkSearch accepts a SEARCH over an exact schema {namespace,dims...} with
// MetricName and dimension terms, when the functions emit series of that shape.
func checkSearch(t *testing.T, where string, expr any, emitted map[string]emfdoc.Series, plotted map[string]bool) {
	t.Helper()
	s, _ := expr.(string)
	m := search.FindStringSubmatch(s)
	if m == nil {
		t.Errorf("%s: expression %q is not a SEARCH this test understands", where, s)
		return
	}
	schema := strings.Split(m[1], ",")
	ns, dims := schema[0], schema[1:]
	sort.Strings(dims)
	terms := map[string]string{}
	for _, tm := range searchTerm.FindAllStringSubmatch(m[2], -1) {
		terms[tm[1]] = tm[2]
	}
	name := terms["MetricName"]
	delete(terms, "MetricName")
	found := false
	for _, e := range emitted {
		var have []string
		for k := range e.Dimensions {
			have = append(have, k)
		}
		sort.Strings(have)
		if e.Namespace != ns || e.Name != name || strings.Join(have, ",") != strings.Join(dims, ",") {
			continue
		}
		match := true
		for k, v := range terms {
			if e.Dimensions[k] != v {
				match = false
			}
		}
		found = found || match
	}
	if !found {
		t.Errorf("%s: %s matches no series the functions emit", where, s)
	}
	if fn := terms[metrics.DimensionFunction]; fn != forwardName && fn != mappingName {
		t.Errorf("%s: %s selects no FunctionName of this stack", where, s)
	}
	plotted[name] = true
}

// TestTwoStacksNeverMix: two stacks in one account and region, running at once against
// the same LivePerson account, publish disjoint series, and every series of either
// names its own function: alarms and dashboards of one never see the other's data.
func TestTwoStacksNeverMix(t *testing.T) {
	env := testenv.New(t)
	stacks := []struct{ forward, mapping string }{
		{"lpmtls-prod-ForwardFunction-AbC123", "lpmtls-prod-MappingFunction-DeF456"},
		{"lpmtls-staging-ForwardFunction-GhI789", "lpmtls-staging-MappingFunction-JkL012"},
	}
	seen := map[string]int{} // series key → stack index
	for i, st := range stacks {
		series := stackSeries(t, env, st.forward, st.mapping)
		if len(series) == 0 {
			t.Fatalf("stack %d wrote no series", i)
		}
		for k, s := range series {
			if fn := s.Dimensions[metrics.DimensionFunction]; fn != st.forward && fn != st.mapping {
				t.Errorf("stack %d: series %s does not name its function", i, k)
			}
			if j, dup := seen[k]; dup && j != i {
				t.Errorf("series %s written by stacks %d and %d", k, j, i)
			}
			seen[k] = i
		}
	}
}
