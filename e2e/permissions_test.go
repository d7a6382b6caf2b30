package e2e

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/session"
)

// Each function's role grants exactly these actions, each on exactly these resources
// (logical ids, parameters, or the cache prefix): its own and nothing else, no "*".
func TestTemplateLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	cache := "TokenCache:" + ssmCache
	cleanup := []string{
		"ListCache ssm:GetParametersByPath " + ssmCachePath,
		"CleanCache ssm:DeleteParameters " + ssmCache,
	}
	want := map[string][]string{
		"ForwardFunction": {
			"WriteLogs logs:CreateLogStream,logs:PutLogEvents ForwardLogs",
			"PollRequestQueue sqs:ReceiveMessage,sqs:DeleteMessage,sqs:GetQueueAttributes RequestQueue",
			"DeadLetterPermanentFailures sqs:SendMessage RequestDLQ",
			"PublishResults sqs:SendMessage ResultsQueue",
			"ReadLivePersonSecret secretsmanager:GetSecretValue LivePersonSecretArn",
			cache,
			"CacheKey kms:Decrypt,kms:Encrypt,kms:GenerateDataKey CacheKmsKeyArn",
			"DecryptSecret kms:Decrypt SecretKmsKeyArn",
		},
		"MappingFunction": {
			"WriteLogs logs:CreateLogStream,logs:PutLogEvents MappingLogs",
			"FailedHealthChecks sqs:SendMessage HealthCheckDLQ",
			"ReadLivePersonSecret secretsmanager:GetSecretValue LivePersonSecretArn",
			cache, cleanup[0], cleanup[1],
			"CacheKey kms:Decrypt,kms:Encrypt,kms:GenerateDataKey CacheKmsKeyArn",
			"DecryptSecret kms:Decrypt SecretKmsKeyArn",
		},
	}
	for fn, grants := range want {
		var got []string
		for _, s := range roleStatements(t, tpl, fn) {
			if s["Effect"] != "Allow" || s["NotAction"] != nil || s["NotResource"] != nil || s["Condition"] != nil {
				t.Fatalf("%s: statement %v", fn, s)
			}
			var actions []string
			switch a := s["Action"].(type) {
			case string:
				actions = []string{a}
			case []any:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
			for _, a := range actions {
				if strings.Contains(a, "*") {
					t.Fatalf("%s: wildcard action %s", fn, a)
				}
			}
			res := ref(s["Resource"])
			if sub, ok := fnArg(s["Resource"], "Fn::Sub").(string); ok {
				res = sub
			} else if sub, ok := stackPrefixed(t, s["Resource"]); ok {
				res = sub
			}
			if res == "" {
				t.Fatalf("%s: resource %v is not one of the stack's or a parameter", fn, s["Resource"])
			}
			if s["Sid"] == "TokenCache" {
				if want := cacheActions(t); !slices.Equal(slices.Sorted(slices.Values(actions)), want) {
					t.Errorf("%s: TokenCache grants %v, want the cache calls' actions: %v", fn, actions, want)
				}
				got = append(got, "TokenCache:"+res)
				continue
			}
			got = append(got, s["Sid"].(string)+" "+strings.Join(actions, ",")+" "+res)
		}
		sort.Strings(got)
		sort.Strings(grants)
		if strings.Join(got, "\n") != strings.Join(grants, "\n") {
			t.Errorf("%s grants:\n%s\nwant:\n%s", fn, strings.Join(got, "\n"), strings.Join(grants, "\n"))
		}
		// The role trusts Lambda alone.
		role := ref(get(t, tpl, "Resources", fn, "Properties", "Role"))
		trust := get(t, tpl, "Resources", role, "Properties", "AssumeRolePolicyDocument", "Statement").([]any)
		if len(trust) != 1 || get(t, trust[0], "Principal", "Service") != "lambda.amazonaws.com" || get(t, trust[0], "Action") != "sts:AssumeRole" {
			t.Errorf("%s: trust policy %v", role, trust)
		}
	}
}

// cacheActions are the SSM actions behind the session's cache calls
// (session.ParameterStore as paramstore.Store makes them; GetMany is GetParameters: a
// cold start reads token and domains in one call), sorted. A new cache call without an
// entry here fails the test, so the grant cannot lag behind the code.
func cacheActions(t *testing.T) []string {
	t.Helper()
	action := map[string]string{
		"Get": "ssm:GetParameter", "GetMany": "ssm:GetParameters",
		"Put": "ssm:PutParameter", "Delete": "ssm:DeleteParameter",
	}
	api := reflect.TypeFor[session.ParameterStore]()
	var out []string
	for i := range api.NumMethod() {
		a, ok := action[api.Method(i).Name]
		if !ok {
			t.Fatalf("session.ParameterStore.%s: which SSM action does it take?", api.Method(i).Name)
		}
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// The cache's parameters and, for GetParametersByPath, its path; ${Prefix} is the
// cache prefix as stackPrefixed checks it.
const (
	ssmCachePath = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Prefix}"
	ssmCache     = ssmCachePath + "/*"
)

// cachePrefix is the one expression of the cache prefix: the parameter when set, else
// /lpmtls/<stack name>, so two stacks never share a cache.
const cachePrefix = `{"Fn::If":["HasCachePrefix",{"Ref":"CacheParameterPrefix"},{"Fn::Sub":"/lpmtls/${AWS::StackName}"}]}`

// stackPrefixed reads !Sub [text, {Prefix: <cachePrefix>}] and returns text; ok is false
// for any other value, and a Prefix other than cachePrefix fails the test.
func stackPrefixed(t *testing.T, v any) (string, bool) {
	t.Helper()
	args, _ := fnArg(v, "Fn::Sub").([]any)
	if len(args) != 2 {
		return "", false
	}
	text, _ := args[0].(string)
	vars, _ := args[1].(map[string]any)
	got, _ := json.Marshal(vars["Prefix"])
	if len(vars) != 1 || string(got) != cachePrefix {
		t.Fatalf("Sub %q: variables %v, want only Prefix = %s", text, vars, cachePrefix)
	}
	return text, true
}

// TestTemplateCachePrefixPerStack: by default the cache prefix is derived from the
// stack's name, in the functions' environment and in every grant alike; an explicit
// one still matches the parameter's pattern.
func TestTemplateCachePrefixPerStack(t *testing.T) {
	tpl := loadTemplate(t)
	p := get(t, tpl, "Parameters", "CacheParameterPrefix")
	if get(t, p, "Default") != "" {
		t.Fatalf("CacheParameterPrefix default %v, want empty (derived from the stack name)", get(t, p, "Default"))
	}
	re := regexp.MustCompile(get(t, p, "AllowedPattern").(string))
	for in, want := range map[string]bool{"": true, "/lpmtls/prod": true, "/brand/lpmtls-staging.v2": true,
		"lpmtls/prod": false, "/lpmtls/": false, "/lpmtls//x": false, "/lpmtls/a b": false} {
		if re.MatchString(in) != want {
			t.Errorf("CacheParameterPrefix %q: accepted %v, want %v", in, !want, want)
		}
	}
	cond, _ := json.Marshal(get(t, tpl, "Conditions", "HasCachePrefix"))
	if string(cond) != `{"Fn::Not":[{"Fn::Equals":[{"Ref":"CacheParameterPrefix"},""]}]}` {
		t.Fatalf("HasCachePrefix %s", cond)
	}
	env, _ := json.Marshal(get(t, tpl, "Globals", "Function", "Environment", "Variables", "LP_CACHE_PARAMETER_PREFIX"))
	if string(env) != cachePrefix {
		t.Fatalf("LP_CACHE_PARAMETER_PREFIX %s, want %s", env, cachePrefix)
	}
	raw, _ := json.Marshal(tpl)
	if strings.Contains(string(raw), "${CacheParameterPrefix}") {
		t.Fatal("a resource names ${CacheParameterPrefix} directly; an empty parameter would grant parameter/*")
	}
}

// TestTemplateCacheCleanup: the stack's delete runs the mapping function's cleanup
// before anything that could still write the cache is gone.
func TestTemplateCacheCleanup(t *testing.T) {
	tpl := loadTemplate(t)
	r := get(t, tpl, "Resources", "CacheCleanup")
	if get(t, r, "Type") != "Custom::CacheCleanup" {
		t.Fatalf("CacheCleanup type %v", get(t, r, "Type"))
	}
	tok, _ := fnArg(get(t, r, "Properties", "ServiceToken"), "Fn::GetAtt").([]any)
	if len(tok) != 2 || tok[0] != "MappingFunction" || tok[1] != "Arn" {
		t.Fatalf("ServiceToken %v, want the mapping function's ARN", get(t, r, "Properties", "ServiceToken"))
	}
	// Above the largest FunctionTimeout: the function answers first, this only bounds a
	// function that cannot run at all (CloudFormation's default is an hour).
	if get(t, r, "Properties", "ServiceTimeout") != "960" {
		t.Fatalf("ServiceTimeout %v", get(t, r, "Properties", "ServiceTimeout"))
	}
	for _, id := range []string{"ForwardFunction", "HealthCheckSchedule", "MappingIntegration"} {
		if get(t, tpl, "Resources", id, "DependsOn") != "CacheCleanup" {
			t.Errorf("%s does not depend on CacheCleanup: it could write the cache after the cleanup", id)
		}
	}
}
