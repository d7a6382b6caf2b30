package e2e

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/paramstore"
)

// Each function's role grants exactly these actions, each on exactly these resources
// (logical ids, parameters, or the cache prefix): its own and nothing else, no "*".
func TestTemplateLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	cache := "TokenCache:" + ssmCache
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
			cache,
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
			}
			if res == "" {
				t.Fatalf("%s: resource %v is not one of the stack's or a parameter", fn, s["Resource"])
			}
			if s["Sid"] == "TokenCache" {
				if want := cacheActions(); !slices.Equal(slices.Sorted(slices.Values(actions)), want) {
					t.Errorf("%s: TokenCache grants %v, want the calls paramstore makes: %v", fn, actions, want)
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

// cacheActions are the SSM actions of the calls paramstore.API makes (GetParameters
// included: a cold start reads token and domains in one call), sorted.
func cacheActions() []string {
	api := reflect.TypeFor[paramstore.API]()
	var out []string
	for i := range api.NumMethod() {
		out = append(out, "ssm:"+api.Method(i).Name)
	}
	sort.Strings(out)
	return out
}

const ssmCache = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${CacheParameterPrefix}/*"
