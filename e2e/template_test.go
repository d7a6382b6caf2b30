package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
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
		stmts := roleStatements(t, tpl, id)
		var sawSecret, sawSSM bool
		for _, m := range stmts {
			if m["Action"] == nil {
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
					sub, _ := stackPrefixed(t, m["Resource"])
					if !strings.HasSuffix(sub, ":parameter${Prefix}/*") {
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
	// The routes are plain API Gateway v2 resources, not HttpApi events: SAM would not
	// evaluate the ApiAuth condition in an HttpApi's Auth.
	for id, fn := range map[string]string{"ForwardFunction": "Forward", "MappingFunction": "Mapping"} {
		events, _ := get(t, resources[id], "Properties").(map[string]any)["Events"].(map[string]any)
		for name, ev := range events {
			if get(t, ev, "Type") == "HttpApi" || get(t, ev, "Type") == "Api" {
				t.Fatalf("%s: API event %s left beside %sRoute", id, name, fn)
			}
		}
	}
	if sub, _ := fnArg(get(t, tpl, "Outputs", "ApiUrl", "Value"), "Fn::Sub").(string); sub != "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" {
		t.Fatalf("ApiUrl output %q", sub)
	}
}

// roleStatements returns the statements of the explicit execution role of function id
// (both branches of a Fn::If, without AWS::NoValue). A function must name its role: a
// role SAM generates for an SQS event also gets AWSLambdaSQSQueueExecutionRole
// (Resource "*").
func roleStatements(t *testing.T, tpl map[string]any, id string) []map[string]any {
	t.Helper()
	props := get(t, tpl, "Resources", id, "Properties").(map[string]any)
	if _, ok := props["Policies"]; ok {
		t.Fatalf("%s: SAM Policies would make SAM generate the role", id)
	}
	role := ref(props["Role"])
	if role == "" || get(t, tpl, "Resources", role, "Type") != "AWS::IAM::Role" {
		t.Fatalf("%s: no explicit AWS::IAM::Role (Role %v)", id, props["Role"])
	}
	rp := get(t, tpl, "Resources", role, "Properties").(map[string]any)
	if _, ok := rp["ManagedPolicyArns"]; ok {
		t.Fatalf("%s: managed policies on %s", id, role)
	}
	var out []map[string]any
	for _, pol := range get(t, rp, "Policies").([]any) {
		for _, s := range get(t, pol, "PolicyDocument", "Statement").([]any) {
			m := s.(map[string]any)
			if iff, isIf := m["Fn::If"].([]any); isIf {
				for _, branch := range iff[1:] {
					if b, ok := branch.(map[string]any); ok && ref(b) != "AWS::NoValue" {
						out = append(out, b)
					}
				}
				continue
			}
			out = append(out, m)
		}
	}
	return out
}

// fnArg returns the argument of intrinsic fn when v is that intrinsic, else nil.
func fnArg(v any, fn string) any {
	m, _ := v.(map[string]any)
	return m[fn]
}

// ref returns the logical id v refers to through Ref or Fn::GetAtt, or "".
func ref(v any) string {
	m, _ := v.(map[string]any)
	switch {
	case m["Ref"] != nil:
		s, _ := m["Ref"].(string)
		return s
	case m["Fn::GetAtt"] != nil:
		a, _ := m["Fn::GetAtt"].([]any)
		if len(a) == 2 {
			s, _ := a[0].(string)
			return s
		}
	}
	return ""
}

func TestTemplateApi(t *testing.T) {
	tpl := loadTemplate(t)
	resources := get(t, tpl, "Resources").(map[string]any)
	if get(t, resources["HttpApi"], "Type") != "AWS::ApiGatewayV2::Api" || get(t, resources["HttpApi"], "Properties", "ProtocolType") != "HTTP" {
		t.Fatalf("HttpApi %v", resources["HttpApi"])
	}
	p := get(t, tpl, "Parameters", "ApiAuth")
	if get(t, p, "Default") != "AWS_IAM" {
		t.Fatalf("ApiAuth default %v", get(t, p, "Default"))
	}
	if av := get(t, p, "AllowedValues").([]any); len(av) != 2 || av[0] != "AWS_IAM" || av[1] != "NONE" {
		t.Fatalf("ApiAuth values %v", av)
	}
	cond := get(t, tpl, "Conditions", "IamAuth").(map[string]any)["Fn::Equals"].([]any)
	if ref(cond[0]) != "ApiAuth" || cond[1] != "AWS_IAM" {
		t.Fatalf("IamAuth condition %v", cond)
	}

	routes := map[string]struct{ key, fn, arnSuffix string }{
		"ForwardRoute": {"ANY /forward", "ForwardFunction", "/*/*/forward"},
		"MappingRoute": {"POST /mapping", "MappingFunction", "/*/POST/mapping"},
	}
	var sawRoutes, sawPermissions int
	for id, r := range resources {
		switch get(t, r, "Type") {
		case "AWS::ApiGatewayV2::Route":
			sawRoutes++
			if _, ok := routes[id]; !ok {
				t.Fatalf("unexpected route %s", id)
			}
		case "AWS::Lambda::Permission":
			sawPermissions++
		case "AWS::Serverless::HttpApi", "AWS::Serverless::Api":
			t.Fatalf("%s: SAM API resource; its Auth cannot follow ApiAuth", id)
		}
	}
	if sawRoutes != len(routes) || sawPermissions != len(routes) {
		t.Fatalf("%d routes, %d permissions", sawRoutes, sawPermissions)
	}
	for id, want := range routes {
		rp := get(t, resources[id], "Properties")
		if ref(get(t, rp, "ApiId")) != "HttpApi" || get(t, rp, "RouteKey") != want.key {
			t.Fatalf("%s: %v", id, rp)
		}
		auth, _ := fnArg(get(t, rp, "AuthorizationType"), "Fn::If").([]any)
		if len(auth) != 3 || auth[0] != "IamAuth" || auth[1] != "AWS_IAM" || auth[2] != "NONE" {
			t.Fatalf("%s: AuthorizationType %v", id, get(t, rp, "AuthorizationType"))
		}
		target, _ := fnArg(get(t, rp, "Target"), "Fn::Sub").(string)
		integ, ok := strings.CutPrefix(target, "integrations/${")
		integ, ok2 := strings.CutSuffix(integ, "}")
		if !ok || !ok2 {
			t.Fatalf("%s: target %v", id, get(t, rp, "Target"))
		}
		ip := get(t, resources[integ], "Properties")
		if get(t, resources[integ], "Type") != "AWS::ApiGatewayV2::Integration" || ref(get(t, ip, "ApiId")) != "HttpApi" ||
			get(t, ip, "IntegrationType") != "AWS_PROXY" || get(t, ip, "PayloadFormatVersion") != "2.0" ||
			ref(get(t, ip, "IntegrationUri")) != want.fn {
			t.Fatalf("%s: integration %s %v", id, integ, ip)
		}
		if ms, _ := strconv.Atoi(get(t, ip, "TimeoutInMillis").(string)); ms < 50 || ms > 30000 {
			t.Fatalf("%s: integration timeout %d", id, ms)
		}
		// The function's permission names this route's path, not the whole API.
		var perm map[string]any
		for _, r := range resources {
			if get(t, r, "Type") == "AWS::Lambda::Permission" && ref(get(t, r, "Properties", "FunctionName")) == want.fn {
				perm = get(t, r, "Properties").(map[string]any)
			}
		}
		if perm == nil || perm["Action"] != "lambda:InvokeFunction" || perm["Principal"] != "apigateway.amazonaws.com" {
			t.Fatalf("%s: permission %v", want.fn, perm)
		}
		arn, _ := fnArg(perm["SourceArn"], "Fn::Sub").(string)
		if arn != "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}"+want.arnSuffix {
			t.Fatalf("%s: permission source %q", want.fn, arn)
		}
	}

	stage := get(t, resources["HttpApiStage"], "Properties")
	if get(t, resources["HttpApiStage"], "Type") != "AWS::ApiGatewayV2::Stage" || ref(get(t, stage, "ApiId")) != "HttpApi" ||
		get(t, stage, "StageName") != "$default" || get(t, stage, "AutoDeploy") != "true" {
		t.Fatalf("stage %v", stage)
	}
	if ref(get(t, stage, "AccessLogSettings", "DestinationArn")) != "ApiAccessLogs" {
		t.Fatal("access logs not sent to ApiAccessLogs")
	}
	format := get(t, stage, "AccessLogSettings", "Format").(string)
	if !strings.Contains(format, "$context.requestId") || !strings.Contains(format, "$context.identity.caller") {
		t.Fatalf("access log format %q", format)
	}
	if get(t, resources["ApiAccessLogs"], "Properties", "RetentionInDays").(map[string]any)["Ref"] != "LogRetentionDays" {
		t.Fatal("access log group without retention")
	}
	if ref(get(t, stage, "DefaultRouteSettings", "ThrottlingRateLimit")) != "ApiThrottleRate" ||
		ref(get(t, stage, "DefaultRouteSettings", "ThrottlingBurstLimit")) != "ApiThrottleBurst" {
		t.Fatalf("stage throttling %v", get(t, stage, "DefaultRouteSettings"))
	}
}

func TestTemplateSecretArnPattern(t *testing.T) {
	tpl := loadTemplate(t)
	// The IAM grant names the parameter verbatim, and matches only the full ARN.
	re := regexp.MustCompile(get(t, tpl, "Parameters", "LivePersonSecretArn", "AllowedPattern").(string))
	for _, tc := range []struct {
		arn  string
		want bool
	}{
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:lpmtls/liveperson-AbCdEf", true},
		{"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:lp-prod-a1B2c3", true},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:lpmtls/liveperson", false},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:lpmtls/liveperson-AbCdE", false},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:-AbCdEf", false},
		{"arn:aws:secretsmanager:us-east-1:1234:secret:lpmtls/liveperson-AbCdEf", false},
		{"lpmtls/liveperson-AbCdEf", false},
	} {
		if got := re.MatchString(tc.arn); got != tc.want {
			t.Errorf("%s: match %v, want %v", tc.arn, got, tc.want)
		}
	}
}

func TestTemplateHealthCheck(t *testing.T) {
	tpl := loadTemplate(t)
	fn := get(t, tpl, "Resources", "MappingFunction", "Properties").(map[string]any)
	if _, ok := fn["Events"]; ok {
		t.Fatal("MappingFunction has SAM events; the schedule is a plain AWS::Scheduler::Schedule")
	}
	sched := get(t, tpl, "Resources", "HealthCheckSchedule")
	if get(t, sched, "Type") != "AWS::Scheduler::Schedule" {
		t.Fatalf("schedule %v", sched)
	}
	p := get(t, sched, "Properties")
	if ref(get(t, p, "ScheduleExpression")) != "HealthCheckRate" || ref(get(t, p, "State")) != "HealthCheckState" ||
		ref(get(t, p, "Target", "Input")) != "HealthCheckInput" || ref(get(t, p, "Target", "Arn")) != "MappingFunction" {
		t.Fatalf("schedule %v", p)
	}
	get(t, p, "Target", "RetryPolicy", "MaximumRetryAttempts")
	if ref(get(t, p, "Target", "DeadLetterConfig", "Arn")) != "HealthCheckDLQ" {
		t.Fatal("schedule dead-letter queue")
	}
	// The schedule's role may invoke the mapping function and fill the DLQ, nothing else.
	role := ref(get(t, p, "Target", "RoleArn"))
	var grants []string
	for _, pol := range get(t, tpl, "Resources", role, "Properties", "Policies").([]any) {
		for _, s := range get(t, pol, "PolicyDocument", "Statement").([]any) {
			grants = append(grants, get(t, s, "Action").(string)+" "+ref(get(t, s, "Resource")))
		}
	}
	if strings.Join(grants, ",") != "lambda:InvokeFunction MappingFunction,sqs:SendMessage HealthCheckDLQ" {
		t.Fatalf("schedule role grants %v", grants)
	}
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

// TestTemplateExpiryWatch: the warning window reaches the mapping function as the
// variable shared/config validates, with the same bounds, and both certificate alarms
// watch the metric the function writes under its own name, keep their state through a
// run without data, and notify the health topic both ways.
func TestTemplateExpiryWatch(t *testing.T) {
	tpl := loadTemplate(t)
	p := get(t, tpl, "Parameters", "CertExpiryWarningDays")
	if get(t, p, "Type") != "Number" || get(t, p, "Default") != strconv.Itoa(config.DefaultCertExpiryWarning) ||
		get(t, p, "MinValue") != "0" || get(t, p, "MaxValue") != strconv.Itoa(config.MaxCertExpiryWarning) {
		t.Fatalf("CertExpiryWarningDays %v", p)
	}
	env := get(t, tpl, "Resources", "MappingFunction", "Properties", "Environment", "Variables")
	if ref(get(t, env, "CERT_EXPIRY_WARNING_DAYS")) != "CertExpiryWarningDays" {
		t.Fatalf("CERT_EXPIRY_WARNING_DAYS %v", get(t, env, "CERT_EXPIRY_WARNING_DAYS"))
	}
	for alarm, metric := range map[string]string{
		"CertificatesExpiringSoonAlarm":  health.MetricExpiringSoon,
		"CertificatesUnavailableAlarm":   health.MetricUnavailable,
		"CertificatesExpiryUnknownAlarm": health.MetricExpiryUnknown,
	} {
		r := get(t, tpl, "Resources", alarm)
		if get(t, r, "Type") != "AWS::CloudWatch::Alarm" {
			t.Fatalf("%s type %v", alarm, get(t, r, "Type"))
		}
		a := get(t, r, "Properties").(map[string]any)
		dims, _ := json.Marshal(a["Dimensions"])
		if a["MetricName"] != metric || ref(a["Namespace"]) != "MetricsNamespace" ||
			string(dims) != `[{"Name":"FunctionName","Value":{"Ref":"MappingFunction"}}]` {
			t.Fatalf("%s watches %v %v %s; want %s under FunctionName alone", alarm, a["Namespace"], a["MetricName"], dims, metric)
		}
		if a["Statistic"] != "Maximum" || a["Threshold"] != "0" || a["ComparisonOperator"] != "GreaterThanThreshold" ||
			ref(a["Period"]) != "HealthCheckAlarmPeriod" || a["EvaluationPeriods"] != "1" {
			t.Fatalf("%s condition %v", alarm, a)
		}
		if a["TreatMissingData"] != "ignore" {
			t.Fatalf("%s TreatMissingData %v, want ignore", alarm, a["TreatMissingData"])
		}
		for _, k := range []string{"AlarmActions", "OKActions"} {
			acts, _ := a[k].([]any)
			if len(acts) != 1 || ref(acts[0]) != "HealthAlarmTopic" {
				t.Fatalf("%s %s %v", alarm, k, a[k])
			}
		}
	}
	p = get(t, tpl, "Parameters", "CertExpiryUnknownAlarm")
	if get(t, p, "Default") != "ENABLED" {
		t.Fatalf("CertExpiryUnknownAlarm %v", p)
	}
	if c := get(t, tpl, "Resources", "CertificatesExpiryUnknownAlarm", "Properties", "ActionsEnabled"); !strings.Contains(fmt.Sprint(c), "CertExpiryUnknownAlarmEnabled") {
		t.Fatalf("the unknown-expiry alarm's actions do not follow CertExpiryUnknownAlarm: %v", c)
	}
	desc, _ := fnArg(get(t, tpl, "Resources", "CertificatesExpiringSoonAlarm", "Properties", "AlarmDescription"), "Fn::Sub").(string)
	if !strings.Contains(desc, "${CertExpiryWarningDays}") {
		t.Fatalf("expiring-soon alarm does not state the window: %q", desc)
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
	// Sending is allowed to the DLQ and the results queue only; the poller's actions
	// on the request queue alone.
	var sends []string
	var polled bool
	for _, sm := range roleStatements(t, tpl, "ForwardFunction") {
		if sm["Action"] == "sqs:SendMessage" {
			sends = append(sends, ref(sm["Resource"]))
		}
		if a, ok := sm["Action"].([]any); ok && a[0] == "sqs:ReceiveMessage" {
			polled = true
			if ref(sm["Resource"]) != "RequestQueue" || len(a) != 3 || a[1] != "sqs:DeleteMessage" || a[2] != "sqs:GetQueueAttributes" {
				t.Fatalf("poller statement %v", sm)
			}
		}
	}
	if !polled {
		t.Fatal("no poller statement on the request queue")
	}
	if strings.Join(sends, ",") != "RequestDLQ,ResultsQueue" {
		t.Fatalf("sqs:SendMessage on %v", sends)
	}
	// LivePerson throttles per incoming IP: the poller's concurrency is capped.
	if ref(get(t, p, "ScalingConfig", "MaximumConcurrency")) != "QueueMaxConcurrency" {
		t.Fatalf("ScalingConfig %v", get(t, p, "ScalingConfig"))
	}
	mc := get(t, tpl, "Parameters", "QueueMaxConcurrency")
	if get(t, mc, "Type") != "Number" || get(t, mc, "Default") != "2" || get(t, mc, "MinValue") != "2" || get(t, mc, "MaxValue") != "1000" {
		t.Fatalf("QueueMaxConcurrency %v", mc)
	}
	env := get(t, fn, "Environment", "Variables").(map[string]any)
	for _, k := range []string{"DLQ_URL", "RESULTS_QUEUE_URL", "FORWARD_CONCURRENCY"} {
		if env[k] == nil {
			t.Fatalf("ForwardFunction lacks %s", k)
		}
	}
}

// The outputs name what a caller is granted on: the execute-api ARN of each route (the
// route's method, "*" for ANY, on the $default stage) and the queues' ARNs.
func TestTemplateOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	resources := get(t, tpl, "Resources").(map[string]any)
	for out, route := range map[string]string{"ForwardInvokeArn": "ForwardRoute", "MappingInvokeArn": "MappingRoute"} {
		method, path, _ := strings.Cut(get(t, resources[route], "Properties", "RouteKey").(string), " ")
		if method == "ANY" {
			method = "*"
		}
		want := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/$default/" + method + path
		if got, _ := fnArg(get(t, tpl, "Outputs", out, "Value"), "Fn::Sub").(string); got != want {
			t.Errorf("%s: %q, want %q", out, got, want)
		}
	}
	if get(t, resources["HttpApiStage"], "Properties", "StageName") != "$default" {
		t.Error("the invoke ARNs assume the $default stage")
	}
	for out, want := range map[string]struct{ fn, resource, attr string }{
		"RequestQueueUrl":               {"Ref", "RequestQueue", ""},
		"RequestQueueArn":               {"Fn::GetAtt", "RequestQueue", "Arn"},
		"RequestDeadLetterQueueUrl":     {"Ref", "RequestDLQ", ""},
		"RequestDeadLetterQueueArn":     {"Fn::GetAtt", "RequestDLQ", "Arn"},
		"HealthCheckDeadLetterQueueArn": {"Fn::GetAtt", "HealthCheckDLQ", "Arn"},
		"ResultsQueueArn":               {"Fn::GetAtt", "ResultsQueue", "Arn"},
	} {
		v := get(t, tpl, "Outputs", out, "Value")
		var name string
		switch want.fn {
		case "Ref":
			name = ref(v)
		default:
			switch a := fnArg(v, want.fn).(type) {
			case string:
				name = strings.TrimSuffix(a, "."+want.attr)
			case []any:
				if len(a) == 2 && a[1] == want.attr {
					name, _ = a[0].(string)
				}
			}
		}
		if name != want.resource {
			t.Errorf("%s: %v, want %s of %s", out, v, want.fn, want.resource)
		}
		if get(t, resources[want.resource], "Type") != "AWS::SQS::Queue" {
			t.Errorf("%s: %s is not a queue", out, want.resource)
		}
		// An output of a conditional resource must carry the same condition.
		if c, ok := resources[want.resource].(map[string]any)["Condition"]; ok && get(t, tpl, "Outputs", out, "Condition") != c {
			t.Errorf("%s: missing Condition %v", out, c)
		}
	}
}

// The KMS parameters feed IAM grants, which a key's alias ARN does not satisfy: only key
// ARNs (or nothing) pass.
func TestTemplateKmsKeyPatterns(t *testing.T) {
	tpl := loadTemplate(t)
	for _, p := range []string{"SecretKmsKeyArn", "CacheKmsKeyArn"} {
		re := regexp.MustCompile(get(t, tpl, "Parameters", p, "AllowedPattern").(string))
		if get(t, tpl, "Parameters", p, "Default") != "" {
			t.Errorf("%s: default must stay empty", p)
		}
		for _, tc := range []struct {
			arn  string
			want bool
		}{
			{"", true},
			{"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
			{"arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", true},
			{"arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
			{"arn:aws:kms:us-east-1:123456789012:alias/lpmtls", false},
			{"alias/aws/ssm", false},
			{"1234abcd-12ab-34cd-56ef-1234567890ab", false},
			{"arn:aws:kms:us-east-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab", false},
			{"arn:aws:kms:us-east-1:123456789012:key/", false},
			{"arn:aws:kms:us-east-1:123456789012:key/abc/def", false},
		} {
			if got := re.MatchString(tc.arn); got != tc.want {
				t.Errorf("%s %q: match %v, want %v", p, tc.arn, got, tc.want)
			}
		}
	}
}

// The body limit's parameter defaults to the function's own default and is passed as
// FORWARD_MAX_BODY_BYTES; neither may exceed what one Lambda event can hold.
func TestTemplateMaxBody(t *testing.T) {
	tpl := loadTemplate(t)
	p := get(t, tpl, "Parameters", "ForwardMaxBodyBytes")
	if get(t, p, "Default") != strconv.Itoa(config.DefaultMaxBodyBytes) {
		t.Errorf("default %v, config's %d", get(t, p, "Default"), config.DefaultMaxBodyBytes)
	}
	if get(t, p, "MaxValue") != strconv.Itoa(config.LambdaRequestBytes) {
		t.Errorf("MaxValue %v, Lambda's request limit %d", get(t, p, "MaxValue"), config.LambdaRequestBytes)
	}
	env := get(t, tpl, "Resources", "ForwardFunction", "Properties", "Environment", "Variables", "FORWARD_MAX_BODY_BYTES")
	if ref(env) != "ForwardMaxBodyBytes" {
		t.Errorf("FORWARD_MAX_BODY_BYTES %v", env)
	}
}

// samconfig.toml holds no region (the profile's or AWS_REGION's applies), builds in the
// source tree in every environment (a makefile build otherwise copies node_modules
// once per function), and overrides only parameters the template declares.
func TestSamconfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	params := get(t, loadTemplate(t), "Parameters").(map[string]any)
	section := ""
	buildInSource := map[string]bool{}
	envs := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			envs[strings.SplitN(section, ".", 2)[0]] = true
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not a key = value line: %q", line)
		}
		key, value = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(value), `"`)
		env, cmd, _ := strings.Cut(section, ".")
		switch {
		case key == "region":
			t.Errorf("[%s] sets a region", section)
		case cmd == "build.parameters" && key == "build_in_source" && value == "true":
			buildInSource[env] = true
		case key == "parameter_overrides":
			for _, kv := range strings.Fields(value) {
				name, _, _ := strings.Cut(kv, "=")
				if _, ok := params[name]; !ok {
					t.Errorf("[%s] overrides %s, which the template does not declare", section, name)
				}
			}
		}
	}
	for _, env := range []string{"default", "staging", "prod"} {
		if !envs[env] || !buildInSource[env] {
			t.Errorf("environment %s: present %v, build_in_source %v", env, envs[env], buildInSource[env])
		}
	}
}
