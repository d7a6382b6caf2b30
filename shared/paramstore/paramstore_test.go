package paramstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/lpmtls/lpmtls/shared/paramstore"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

var _ paramstore.API = (*ssm.Client)(nil)

func newStore(t *testing.T, kmsKeyID string) (*awsfake.Server, *paramstore.Store) {
	t.Helper()
	srv, cfg := testenv.AWS(t)
	return srv, paramstore.New(ssm.NewFromConfig(cfg), kmsKeyID)
}

func TestPutTypes(t *testing.T) {
	tests := []struct {
		name     string
		kmsKeyID string
		secure   bool
		wantType string
		wantKey  string
	}{
		{"secure default key", "", true, "SecureString", "alias/aws/ssm"},
		{"secure custom key", "alias/lpmtls", true, "SecureString", "alias/lpmtls"},
		{"plain", "alias/lpmtls", false, "String", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, st := newStore(t, tt.kmsKeyID)
			ctx := context.Background()
			const name = "/lpmtls/123/token"
			if err := st.Put(ctx, name, "bearer-VALUE", tt.secure, false); err != nil {
				t.Fatal(err)
			}
			v, typ, ok := srv.Parameter(name)
			if !ok || v != "bearer-VALUE" || typ != tt.wantType {
				t.Errorf("stored %q %q %v, want type %s", v, typ, ok, tt.wantType)
			}
			if k := srv.ParameterKeyID(name); k != tt.wantKey {
				t.Errorf("key id = %q, want %q", k, tt.wantKey)
			}
			got, found, err := st.Get(ctx, name)
			if err != nil || !found || got != "bearer-VALUE" {
				t.Errorf("Get = %q %v %v", got, found, err)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	srv, st := newStore(t, "")
	ctx := context.Background()
	const name = "/lpmtls/123/lease"

	if v, found, err := st.Get(ctx, name); err != nil || found || v != "" {
		t.Fatalf("Get missing = %q %v %v", v, found, err)
	}
	if err := st.Put(ctx, name, "holder-a", false, false); err != nil {
		t.Fatal(err)
	}
	err := st.Put(ctx, name, "holder-b", false, false)
	if !errors.Is(err, paramstore.ErrExists) {
		t.Fatalf("second create: want ErrExists, got %v", err)
	}
	if v, _, _ := srv.Parameter(name); v != "holder-a" {
		t.Errorf("failed create changed the value to %q", v)
	}
	if err := st.Put(ctx, name, "holder-b", false, true); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if v, _, _ := st.Get(ctx, name); v != "holder-b" {
		t.Errorf("after overwrite = %q", v)
	}
	if err := st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := srv.Parameter(name); ok {
		t.Error("parameter still there after Delete")
	}
	if err := st.Delete(ctx, name); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
}

func TestServiceFailures(t *testing.T) {
	srv, st := newStore(t, "")
	ctx := context.Background()
	const name = "/lpmtls/123/token"
	srv.SetParameter(name, "cached-VALUE", "SecureString")

	srv.Down(true)
	_, found, err := st.Get(ctx, name)
	if err == nil || found {
		t.Errorf("Get while down: found=%v err=%v", found, err)
	}
	if err := st.Put(ctx, name, "new-VALUE", true, true); err == nil || errors.Is(err, paramstore.ErrExists) || strings.Contains(err.Error(), "VALUE") {
		t.Errorf("Put while down: %v", err)
	}
	if err := st.Delete(ctx, name); err == nil {
		t.Error("Delete while down: want error")
	}
	srv.Down(false)

	srv.FailNext("AmazonSSM.GetParameter", 1, 500, "InternalServerError")
	_, _, err = st.Get(ctx, name)
	var ise *ssmtypes.InternalServerError
	if !errors.As(err, &ise) || !strings.Contains(err.Error(), name) {
		t.Errorf("Get with fault: want wrapped *InternalServerError naming %s, got %v", name, err)
	}
	if v, found, err := st.Get(ctx, name); err != nil || !found || v != "cached-VALUE" {
		t.Errorf("Get after fault = %q %v %v", v, found, err)
	}
}

// TestDeleteTree: every parameter under the prefix goes, at any depth and over several
// pages and batches; a sibling prefix that merely starts with the same letters stays.
func TestDeleteTree(t *testing.T) {
	cases := []struct {
		name  string
		under int // parameters under the prefix
	}{
		{"empty", 0},
		{"one page", 3},
		{"exactly one batch", 10},
		{"several pages and batches", 23},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, st := newStore(t, "")
			const prefix = "/lpmtls/stack-a"
			for i := range c.under {
				name := prefix + "/" + strconv.Itoa(i) + "/token"
				if i%2 == 0 {
					name = prefix + "/p" + strconv.Itoa(i)
				}
				srv.SetParameter(name, "v", "SecureString")
			}
			srv.SetParameter("/lpmtls/stack-ab/token", "v", "SecureString")
			srv.SetParameter("/lpmtls/other/token", "v", "String")
			srv.ResetCalls()
			n, err := st.DeleteTree(context.Background(), prefix)
			if err != nil || n != c.under {
				t.Fatalf("DeleteTree = %d, %v; want %d", n, err, c.under)
			}
			if left := srv.ParameterNames(prefix + "/"); len(left) != 0 {
				t.Fatalf("left under the prefix: %v", left)
			}
			if left := srv.ParameterNames("/lpmtls/"); len(left) != 2 {
				t.Fatalf("siblings: %v", left)
			}
			calls := srv.Calls()
			if want := (c.under + 9) / 10; calls["AmazonSSM.DeleteParameters"] != want || calls["AmazonSSM.GetParametersByPath"] != max(1, want) {
				t.Fatalf("calls %v", calls)
			}
		})
	}
}

// TestDeleteTreeRefused: an SSM refusal is an error naming the prefix, nothing deleted.
func TestDeleteTreeRefused(t *testing.T) {
	srv, st := newStore(t, "")
	srv.SetParameter("/lpmtls/s/token", "v", "SecureString")
	srv.FailNext("AmazonSSM.DeleteParameters", 1, 400, "AccessDeniedException")
	_, err := st.DeleteTree(context.Background(), "/lpmtls/s")
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "/lpmtls/s") {
		t.Fatalf("err %v", err)
	}
	if _, _, ok := srv.Parameter("/lpmtls/s/token"); !ok {
		t.Fatal("parameter gone after a refusal")
	}
}
