package config

import (
	"reflect"
	"testing"
)

func TestMTLSConfig(t *testing.T) {
	c, err := Load(env(map[string]string{
		"LP_MAPPING_OBJECTS_PATH":    "/api/account/{accountId}/configuration/ac-common/mtls",
		"LP_MAPPING_OBJECTS_VERSION": "-",
		"LP_SERVICE_IDS":             `{"WEBHOOKS":"2","CUSTOM":"9"}`,
		"LP_ACTIVATE_FLAG_IN_BODY":   "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := MTLSConfig{MappingObjectsPath: "/api/account/{accountId}/configuration/ac-common/mtls", MappingObjectsVersion: "-",
		ServiceIDs: map[string]string{"WEBHOOKS": "2", "CUSTOM": "9"}, ActivateFlagInBody: true}
	if !reflect.DeepEqual(c.MTLS, want) {
		t.Errorf("%+v", c.MTLS)
	}
	if c, _ := Load(env(nil)); !reflect.DeepEqual(c.MTLS, MTLSConfig{}) {
		t.Errorf("defaults %+v (the lp client fills them)", c.MTLS)
	}
	for _, tt := range []struct{ key, val string }{
		{"LP_MAPPING_OBJECTS_PATH", "api/{accountId}"},
		{"LP_MAPPING_OBJECTS_PATH", "/api/account/x/mtls"},
		{"LP_MAPPING_OBJECTS_PATH", "/api/{accountId}?v=1"},
		{"LP_SERVICE_IDS", `["WEBHOOKS"]`},
		{"LP_SERVICE_IDS", `{}`},
		{"LP_SERVICE_IDS", `{"bad name":"1"}`},
		{"LP_ACTIVATE_FLAG_IN_BODY", "maybe"},
	} {
		_, err := Load(env(map[string]string{tt.key: tt.val}))
		ce, ok := err.(*Error)
		if !ok || len(ce.Problems) != 1 || ce.Problems[0].Var != tt.key {
			t.Errorf("%s=%s: %v", tt.key, tt.val, err)
		}
	}
}
