package memsession

import (
	"context"
	"errors"
	"testing"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
)

func TestDo(t *testing.T) {
	refused := &lp.Error{Kind: lp.KindAuth, Status: 401}
	other := errors.New("target down")
	for _, tc := range []struct {
		name     string
		relogin  bool
		answers  []error
		want     error
		sources  []session.TokenSource
		relogins int
	}{
		{"success", true, []error{nil}, nil, []session.TokenSource{session.SourceStore}, 0},
		{"other error is not replayed", true, []error{other}, other, []session.TokenSource{session.SourceStore}, 0},
		{"refused without Relogin is final", false, []error{refused}, refused, []session.TokenSource{session.SourceStore}, 0},
		{"refused is replayed once after a login", true, []error{refused, refused}, refused,
			[]session.TokenSource{session.SourceStore, session.SourceLogin}, 1},
		{"refused then accepted", true, []error{refused, nil}, nil,
			[]session.TokenSource{session.SourceStore, session.SourceLogin}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relogins := 0
			s := &Sessions{Auth: lp.Auth{AccountID: "1", Bearer: "b"}, Source: session.SourceStore}
			if tc.relogin {
				s.Relogin = func(context.Context) { relogins++ }
			}
			var sources []session.TokenSource
			err := s.Do(context.Background(), func(_ context.Context, sess session.Session) error {
				if sess.AccountID != s.Auth.AccountID || sess.Bearer != s.Auth.Bearer {
					t.Errorf("auth %+v, want %+v", sess.Auth, s.Auth)
				}
				sources = append(sources, sess.Source)
				return tc.answers[len(sources)-1]
			})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if len(sources) != len(tc.sources) || relogins != tc.relogins {
				t.Fatalf("sources %v relogins %d, want %v and %d", sources, relogins, tc.sources, tc.relogins)
			}
			for i := range sources {
				if sources[i] != tc.sources[i] {
					t.Errorf("sources %v, want %v", sources, tc.sources)
				}
			}
		})
	}
}
