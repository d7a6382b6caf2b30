package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lpmtls/lpmtls/shared/testenv"
)

// loadTemplate parses template.yaml into plain maps, turning the CloudFormation short
// forms (!Ref, !Sub, !GetAtt, !If ...) into their long forms so assertions see the
// structure CloudFormation sees.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return convert(doc.Content[0]).(map[string]any)
}

func convert(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = convert(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			s = append(s, convert(c))
		}
		v = s
	case yaml.AliasNode:
		return convert(n.Alias)
	default:
		v = n.Value
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		if name == "Fn::GetAtt" {
			if s, ok := v.(string); ok {
				parts := strings.SplitN(s, ".", 2)
				v = []any{parts[0], parts[1]}
			}
		}
		return map[string]any{name: v}
	}
	return v
}

func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a map at %q", strings.Join(path, "."), p)
		}
		if v, ok = m[p]; !ok {
			t.Fatalf("%s: missing %q", strings.Join(path, "."), p)
		}
	}
	return v
}

func TestTemplateFunctions(t *testing.T) {
	tpl := loadTemplate(t)
	if get(t, tpl, "Transform") != "AWS::Serverless-2016-10-31" {
		t.Fatal("not a SAM template")
	}
	fn := get(t, tpl, "Globals", "Function")
	if get(t, fn, "Runtime") != "provided.al2023" || get(t, fn, "Handler") != "bootstrap" {
		t.Fatalf("globals %v", fn)
	}
	if archs := get(t, fn, "Architectures").([]any); len(archs) != 1 || archs[0] != "arm64" {
		t.Fatalf("architectures %v", archs)
	}
	makefile, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	resources := get(t, tpl, "Resources").(map[string]any)
	for _, id := range []string{"ForwardFunction", "MappingFunction"} {
		r := resources[id]
		if get(t, r, "Type") != "AWS::Serverless::Function" || get(t, r, "Metadata", "BuildMethod") != "makefile" || get(t, r, "Properties", "CodeUri") != "." {
			t.Fatalf("%s: %v", id, r)
		}
		if !regexp.MustCompile(`(?m)^build-` + id + `:`).Match(makefile) {
			t.Fatalf("Makefile lacks build-%s, which sam build calls", id)
		}
		// Least privilege: the secret by ARN, SSM only under the prefix.
		var stmts []any
		for _, pol := range get(t, r, "Properties", "Policies").([]any) {
			if st, ok := pol.(map[string]any)["Statement"].([]any); ok {
				stmts = append(stmts, st...)
			}
		}
		var sawSecret, sawSSM bool
		for _, s := range stmts {
			m, ok := s.(map[string]any)
			if !ok || m["Action"] == nil {
				continue
			}
			switch a := m["Action"].(type) {
			case string:
				if a == "secretsmanager:GetSecretValue" {
					sawSecret = true
					if res := m["Resource"].(map[string]any)["Ref"]; res != "LivePersonSecretArn" {
						t.Fatalf("%s: secret resource %v", id, m["Resource"])
					}
				}
			case []any:
				if a[0] == "ssm:GetParameter" {
					sawSSM = true
					sub := m["Resource"].(map[string]any)["Fn::Sub"].(string)
					if !strings.HasSuffix(sub, ":parameter${CacheParameterPrefix}/*") {
						t.Fatalf("%s: SSM resource %q", id, sub)
					}
				}
			}
			if m["Resource"] == "*" {
				t.Fatalf("%s: wildcard resource in %v", id, m)
			}
		}
		if !sawSecret || !sawSSM {
			t.Fatalf("%s: policies %v", id, stmts)
		}
		lg := get(t, r, "Properties", "LoggingConfig", "LogGroup").(map[string]any)["Ref"].(string)
		if get(t, resources[lg], "Properties", "RetentionInDays").(map[string]any)["Ref"] != "LogRetentionDays" {
			t.Fatalf("%s: log group without retention", id)
		}
	}
	if ev := get(t, resources["ForwardFunction"], "Properties", "Events", "Forward", "Properties"); get(t, ev, "Path") != "/forward" || get(t, ev, "Method") != "ANY" {
		t.Fatalf("forward route %v", ev)
	}
	if ev := get(t, resources["MappingFunction"], "Properties", "Events", "Mapping", "Properties"); get(t, ev, "Path") != "/mapping" || get(t, ev, "Method") != "POST" {
		t.Fatalf("mapping route %v", ev)
	}
	auth := get(t, resources["HttpApi"], "Properties", "Auth", "DefaultAuthorizer").(map[string]any)["Fn::If"].([]any)
	if auth[0] != "IamAuth" || auth[1] != "AWS_IAM" || get(t, tpl, "Parameters", "ApiAuth", "Default") != "AWS_IAM" {
		t.Fatalf("API auth %v", auth)
	}
	if _, ok := get(t, tpl, "Outputs", "ApiUrl", "Value").(map[string]any)["Fn::Sub"]; !ok {
		t.Fatal("ApiUrl output")
	}
}

func TestTemplateHealthCheck(t *testing.T) {
	tpl := loadTemplate(t)
	fn := get(t, tpl, "Resources", "MappingFunction", "Properties")
	sched := get(t, fn, "Events", "HealthCheck")
	if get(t, sched, "Type") != "ScheduleV2" {
		t.Fatalf("schedule %v", sched)
	}
	p := get(t, sched, "Properties")
	get(t, p, "RetryPolicy", "MaximumRetryAttempts")
	get(t, p, "DeadLetterConfig", "QueueLogicalId")
	if get(t, tpl, "Parameters", "HealthCheckRate", "Default") != "rate(5 minutes)" {
		t.Fatal("default rate")
	}
	for _, alarm := range []string{"MappingsMissingAlarm", "HealthCheckFailedAlarm"} {
		a := get(t, tpl, "Resources", alarm, "Properties")
		if get(t, a, "Threshold") != "0" || get(t, a, "ComparisonOperator") != "GreaterThanThreshold" {
			t.Fatalf("%s %v", alarm, a)
		}
		if get(t, a, "AlarmActions").([]any)[0].(map[string]any)["Ref"] != "HealthAlarmTopic" {
			t.Fatalf("%s actions", alarm)
		}
	}
	if get(t, tpl, "Resources", "HealthAlarmEmail", "Condition") != "HasAlertEmail" {
		t.Fatal("e-mail subscription must be optional")
	}
}

func TestTemplateQueue(t *testing.T) {
	tpl := loadTemplate(t)
	fn := get(t, tpl, "Resources", "ForwardFunction", "Properties")
	ev := get(t, fn, "Events", "Queue")
	if get(t, ev, "Type") != "SQS" {
		t.Fatalf("queue event %v", ev)
	}
	p := get(t, ev, "Properties")
	if frt := get(t, p, "FunctionResponseTypes").([]any); len(frt) != 1 || frt[0] != "ReportBatchItemFailures" {
		t.Fatalf("FunctionResponseTypes %v", frt)
	}
	if get(t, p, "Queue").(map[string]any)["Fn::GetAtt"].([]any)[0] != "RequestQueue" {
		t.Fatal("event source is not the request queue")
	}
	q := get(t, tpl, "Resources", "RequestQueue", "Properties")
	if get(t, q, "RedrivePolicy", "deadLetterTargetArn").(map[string]any)["Fn::GetAtt"].([]any)[0] != "RequestDLQ" {
		t.Fatal("redrive policy")
	}
	// Visibility timeout >= 6 x function timeout + batching window, for every allowed timeout.
	vis := get(t, q, "VisibilityTimeout").(map[string]any)["Fn::FindInMap"].([]any)
	if vis[0] != "QueueVisibility" || vis[1].(map[string]any)["Ref"] != "FunctionTimeout" {
		t.Fatalf("visibility timeout %v", vis)
	}
	maxWindow, _ := strconv.Atoi(get(t, tpl, "Parameters", "QueueBatchingWindow", "MaxValue").(string))
	for _, a := range get(t, tpl, "Parameters", "FunctionTimeout", "AllowedValues").([]any) {
		timeout, _ := strconv.Atoi(a.(string))
		seconds, _ := strconv.Atoi(get(t, tpl, "Mappings", "QueueVisibility", a.(string), "Seconds").(string))
		if seconds < 6*timeout+maxWindow || seconds > 43200 {
			t.Fatalf("timeout %d: visibility %d", timeout, seconds)
		}
	}
	// Sending is allowed to the DLQ and the results queue only.
	var sends []string
	for _, pol := range get(t, fn, "Policies").([]any) {
		m := pol.(map[string]any)
		if sp, ok := m["SQSPollerPolicy"]; ok {
			if get(t, sp, "QueueName").(map[string]any)["Fn::GetAtt"].([]any)[0] != "RequestQueue" {
				t.Fatal("poller policy not scoped to the request queue")
			}
		}
		stmts, _ := m["Statement"].([]any)
		for _, s := range stmts {
			sm, ok := s.(map[string]any)
			if iff, isIf := sm["Fn::If"].([]any); isIf {
				sm, ok = iff[1].(map[string]any)
			}
			if ok && sm["Action"] == "sqs:SendMessage" {
				sends = append(sends, sm["Resource"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string))
			}
		}
	}
	if strings.Join(sends, ",") != "RequestDLQ,ResultsQueue" {
		t.Fatalf("sqs:SendMessage on %v", sends)
	}
	env := get(t, fn, "Environment", "Variables").(map[string]any)
	for _, k := range []string{"DLQ_URL", "RESULTS_QUEUE_URL", "FORWARD_CONCURRENCY"} {
		if env[k] == nil {
			t.Fatalf("ForwardFunction lacks %s", k)
		}
	}
}
