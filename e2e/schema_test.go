package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/awslabs/goformation/v7/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// The template is checked against the JSON schemas goformation ships: its CloudFormation
// schema for every plain resource, its SAM schema for AWS::Serverless::* and Globals.
// Strictly: an unknown resource type, an unknown property or a wrong type fails.
//
// What is validated is the template as CloudFormation reads it: goformation's reader
// turns the YAML into JSON with the short forms as {"Ref": …} / {"Fn::…": …} objects and
// nothing resolved. The schemas describe resolved values, so an intrinsic function is
// accepted wherever a value is; Fn::If is checked on both branches (every condition
// true, then every one false), AWS::NoValue removing the member it stands for.
// goformation's typed parse is not used: it does not apply Globals, drops SQS event
// properties it does not model, resolves a Ref to a resource as "", and cannot hold
// this template at all (a Number parameter is Ref'd as Timeout, an int in its model,
// and as an environment variable, a string).

// samSchemaGaps are the properties the AWS SAM specification documents that goformation
// v7.14.9's SAM schema lacks (it predates them). Each is checked against the
// CloudFormation definition SAM passes it through to, or the type the SAM documentation
// gives; nothing else is exempt.
var samSchemaGaps = []struct {
	definition, property string
	schema               map[string]any
	doc                  string
}{
	{"AWS::Serverless::Function", "LoggingConfig", defRef("AWS::Lambda::Function.LoggingConfig"),
		"AWS::Serverless::Function LoggingConfig: passed to AWS::Lambda::Function"},
	{"Globals.Function", "LoggingConfig", defRef("AWS::Lambda::Function.LoggingConfig"),
		"Globals: every AWS::Serverless::Function property but a few listed ones may be global"},
	{"AWS::Serverless::Function.SQSEvent", "MaximumBatchingWindowInSeconds", map[string]any{"type": "number"},
		"SQS event: passed to AWS::Lambda::EventSourceMapping"},
	{"AWS::Serverless::Function.SQSEvent", "FunctionResponseTypes",
		map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []any{"ReportBatchItemFailures"}}},
		"SQS event: passed to AWS::Lambda::EventSourceMapping"},
	{"AWS::Serverless::Function.SQSEvent", "ScalingConfig", defRef("AWS::Lambda::EventSourceMapping.ScalingConfig"),
		"SQS event: passed to AWS::Lambda::EventSourceMapping"},
}

// customResource is the definition CloudFormation applies to a Custom::<name> type.
const customResource = "AWS::CloudFormation::CustomResource"

// serviceTimeoutGap: the CloudFormation documentation gives AWS::CloudFormation::
// CustomResource a ServiceTimeout (an integer of seconds, 1 to 3600) that goformation
// v7.14.9's schema predates.
var serviceTimeoutGap = map[string]any{"type": "integer", "minimum": 1, "maximum": 3600}

// cfnDef and samDef return one definition of goformation's schemas, as parsed.
func cfnDef(t *testing.T, name string) any { return definition(t, schema.CloudformationSchema, name) }
func samDef(t *testing.T, name string) any { return definition(t, schema.SamSchema, name) }

func definition(t *testing.T, text, name string) any {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	d := doc.(map[string]any)["definitions"].(map[string]any)[name]
	if d == nil {
		t.Fatalf("no definition %s", name)
	}
	return d
}

// samSchemaOptional are properties the SAM schema requires that the SAM documentation
// marks "Required: No".
var samSchemaOptional = []struct {
	definition string
	properties []string
	doc        string
}{
	{"AWS::Serverless::Function.EventInvokeDestinationConfig", []string{"OnFailure", "OnSuccess"},
		"EventInvokeDestinationConfiguration: OnFailure and OnSuccess, each Required: No"},
}

func defRef(def string) map[string]any { return map[string]any{"$ref": "#/definitions/" + def} }

const intrinsicDef = "lpmtls::Intrinsic"

// intrinsic is any one intrinsic function other than Fn::If (expanded before validation).
var intrinsic = map[string]any{
	"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
	"patternProperties": map[string]any{
		`^(Ref|Fn::(Base64|Cidr|FindInMap|GetAtt|GetAZs|ImportValue|Join|Select|Split|Sub|Length|ToJsonString))$`: map[string]any{},
	},
}

// allowIntrinsics lets an intrinsic function stand wherever s describes a value.
func allowIntrinsics(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	for _, k := range []string{"properties", "patternProperties", "definitions"} {
		if children, ok := m[k].(map[string]any); ok {
			for name, c := range children {
				children[name] = allowIntrinsics(c)
				if k != "definitions" {
					children[name] = orIntrinsic(children[name])
				}
			}
		}
	}
	if c, ok := m["additionalProperties"].(map[string]any); ok {
		m["additionalProperties"] = orIntrinsic(allowIntrinsics(c))
	}
	switch items := m["items"].(type) {
	case map[string]any:
		m["items"] = orIntrinsic(allowIntrinsics(items))
	case []any:
		for i, c := range items {
			items[i] = orIntrinsic(allowIntrinsics(c))
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if list, ok := m[k].([]any); ok {
			for i, c := range list {
				list[i] = allowIntrinsics(c)
			}
		}
	}
	return m
}

func orIntrinsic(s any) any {
	return map[string]any{"anyOf": []any{s, defRef(intrinsicDef)}}
}

// loadSchema parses one of goformation's schemas as a draft-04 document (its "$id" is
// the draft-04 meta-schema's own URL, which would shadow it), keeps the definitions the
// given ones reach and the top-level properties named in top (the whole 7 MB document
// takes the validator minutes to compile), and lets intrinsics stand for values.
func loadSchema(t *testing.T, text string, defsUsed, top []string, patch func(defs, root map[string]any)) *jsonschema.Compiler {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	full := doc.(map[string]any)
	allDefs := full["definitions"].(map[string]any)
	defs := map[string]any{}
	root := map[string]any{"$schema": "http://json-schema.org/draft-04/schema#", "definitions": defs, "properties": map[string]any{}}
	for _, k := range top {
		root["properties"].(map[string]any)[k] = full["properties"].(map[string]any)[k]
	}
	for _, d := range defsUsed {
		if allDefs[d] != nil {
			defs[d] = allDefs[d]
		}
	}
	if patch != nil {
		patch(defs, root)
	}
	// The closure over $ref, from what is kept.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				name := strings.TrimPrefix(r, "#/definitions/")
				if defs[name] == nil && allDefs[name] != nil {
					defs[name] = allDefs[name]
					walk(allDefs[name])
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(root)
	allowIntrinsics(root)
	defs[intrinsicDef] = intrinsic
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource("schema.json", root); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTemplateMatchesAWSSchemas(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// goformation reads the template: YAML to JSON, the short forms of intrinsic
	// functions to their long forms, nothing resolved. Its typed model is not used: it
	// cannot hold this valid template (a Number parameter Ref'd both as Timeout, an int
	// there, and as an environment variable, a string there), does not apply Globals
	// and drops SQS event properties it does not model.
	asJSON, err := intrinsics.ProcessYAML(raw, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(asJSON, &parsed); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range parsed["Resources"].(map[string]any) {
		if typ, ok := r.(map[string]any)["Type"].(string); ok {
			types = append(types, typ)
		}
	}
	var gapDefs []string
	for _, g := range samSchemaGaps {
		if r, ok := g.schema["$ref"].(string); ok {
			gapDefs = append(gapDefs, strings.TrimPrefix(r, "#/definitions/"))
		}
	}
	cfn := loadSchema(t, schema.CloudformationSchema, append(types, append(gapDefs, customResource)...), nil, func(defs, _ map[string]any) {
		props := defs[customResource].(map[string]any)["properties"].(map[string]any)["Properties"].(map[string]any)["properties"].(map[string]any)
		if _, exists := props["ServiceTimeout"]; exists {
			t.Fatal("ServiceTimeout is in the CloudFormation schema now: drop serviceTimeoutGap")
		}
		props["ServiceTimeout"] = serviceTimeoutGap
	})
	sam := loadSchema(t, schema.SamSchema, types, []string{"Globals"}, func(defs, root map[string]any) {
		for _, g := range samSchemaGaps {
			var target map[string]any
			if def, ok := strings.CutPrefix(g.definition, "Globals."); ok {
				target = root["properties"].(map[string]any)["Globals"].(map[string]any)["properties"].(map[string]any)[def].(map[string]any)
			} else {
				if defs[g.definition] == nil { // reached through the function's definition
					defs[g.definition] = samDef(t, g.definition)
				}
				target = defs[g.definition].(map[string]any)
				if p, ok := target["properties"].(map[string]any)["Properties"].(map[string]any); ok && g.definition == "AWS::Serverless::Function" {
					target = p
				}
			}
			props := target["properties"].(map[string]any)
			if _, exists := props[g.property]; exists {
				t.Fatalf("%s.%s is in the SAM schema now: drop it from samSchemaGaps", g.definition, g.property)
			}
			props[g.property] = g.schema
		}
		for _, o := range samSchemaOptional {
			if defs[o.definition] == nil {
				defs[o.definition] = samDef(t, o.definition)
			}
			def := defs[o.definition].(map[string]any)
			req, _ := def["required"].([]any)
			var keep []any
			for _, r := range req {
				if !slices.Contains(o.properties, r.(string)) {
					keep = append(keep, r)
				}
			}
			if len(req)-len(keep) != len(o.properties) {
				t.Fatalf("%s no longer requires %v: drop it from samSchemaOptional", o.definition, o.properties)
			}
			def["required"] = keep
			if len(keep) == 0 {
				delete(def, "required") // draft-04 wants a non-empty list
			}
		}
		// The CloudFormation definitions the gaps refer to, from the CloudFormation schema.
		for _, name := range gapDefs {
			if defs[name] == nil {
				defs[name] = cfnDef(t, name)
			}
		}
	})
	globals, err := sam.Compile("schema.json#/properties/Globals")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validate(t, cfn, sam, globals, parsed) {
		t.Error(e)
	}

	// The check is strict: each of these breaks it.
	for name, change := range map[string]func(res map[string]any){
		"unknown property":                     func(res map[string]any) { prop(res, "RequestQueue")["VisibilityTimeOut"] = 30.0 },
		"wrong type":                           func(res map[string]any) { prop(res, "RequestQueue")["SqsManagedSseEnabled"] = []any{"yes"} },
		"unknown resource type":                func(res map[string]any) { res["RequestQueue"].(map[string]any)["Type"] = "AWS::SQS::Queues" },
		"unknown SAM property":                 func(res map[string]any) { prop(res, "ForwardFunction")["MemorySizeMB"] = 256.0 },
		"custom resource timeout over an hour": func(res map[string]any) { prop(res, "CacheCleanup")["ServiceTimeout"] = 7200.0 },
		"unknown property under an If": func(res map[string]any) {
			prop(res, "ForwardFunction")["Environment"] = map[string]any{"Fn::If": []any{"HasResultsQueue", map[string]any{"Variables": map[string]any{}}, map[string]any{"Vars": map[string]any{}}}}
		},
		"wrong type in a nested property": func(res map[string]any) {
			prop(res, "HealthCheckSchedule")["FlexibleTimeWindow"] = map[string]any{"Mode": "OFF", "MaximumWindowInMinutes": "ten"}
		},
	} {
		var broken map[string]any
		if err := json.Unmarshal(asJSON, &broken); err != nil {
			t.Fatal(err)
		}
		change(broken["Resources"].(map[string]any))
		if errs := validate(t, cfn, sam, globals, broken); len(errs) == 0 {
			t.Errorf("%s: the template still passes", name)
		}
	}
}

func prop(res map[string]any, id string) map[string]any {
	return res[id].(map[string]any)["Properties"].(map[string]any)
}

// validate checks every resource, and SAM's Globals, with every condition true and then
// with every one false, and returns the failures.
func validate(t *testing.T, cfn, sam *jsonschema.Compiler, globals *jsonschema.Schema, parsed map[string]any) []string {
	t.Helper()
	var errs []string
	for _, variant := range []bool{true, false} {
		tpl := resolveIfs(parsed, variant).(map[string]any)
		resources := tpl["Resources"].(map[string]any)
		ids := make([]string, 0, len(resources))
		for id := range resources {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			r := resources[id].(map[string]any)
			typ, _ := r["Type"].(string)
			if strings.HasPrefix(typ, "Custom::") {
				// Read as AWS::CloudFormation::CustomResource; the schema enumerates that
				// one name as its Type. This template's custom resource takes no
				// properties beyond the definition's, so its strictness holds.
				typ = customResource
				r = maps.Clone(r)
				r["Type"] = customResource
			}
			c := cfn
			if strings.HasPrefix(typ, "AWS::Serverless::") {
				c = sam
			}
			sch, err := c.Compile("schema.json#/definitions/" + typ)
			if err != nil || typ == "" {
				errs = append(errs, fmt.Sprintf("%s: resource type %q is not in the schema: %v", id, typ, err))
				continue
			}
			if err := sch.Validate(roundTrip(t, r)); err != nil {
				errs = append(errs, fmt.Sprintf("%s (%s, conditions %v): %v", id, typ, variant, err))
			}
		}
		// SAM's Globals, against the SAM schema's Globals.
		if err := globals.Validate(roundTrip(t, tpl["Globals"])); err != nil {
			errs = append(errs, fmt.Sprintf("Globals (conditions %v): %v", variant, err))
		}
	}
	return errs
}

type noValue struct{}

// resolveIfs replaces every Fn::If by its branch for the given truth of all conditions
// and drops what resolves to AWS::NoValue.
func resolveIfs(v any, truth bool) any {
	switch x := v.(type) {
	case map[string]any:
		if args, ok := x["Fn::If"].([]any); ok && len(x) == 1 && len(args) == 3 {
			if truth {
				return resolveIfs(args[1], truth)
			}
			return resolveIfs(args[2], truth)
		}
		if len(x) == 1 && x["Ref"] == "AWS::NoValue" {
			return noValue{}
		}
		out := map[string]any{}
		for k, c := range x {
			if r := resolveIfs(c, truth); r != (noValue{}) {
				out[k] = r
			}
		}
		return out
	case []any:
		out := []any{}
		for _, c := range x {
			if r := resolveIfs(c, truth); r != (noValue{}) {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

// roundTrip gives the validator the JSON values it expects (json.Number numbers).
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(fmt.Errorf("%w: %s", err, b))
	}
	return out
}
