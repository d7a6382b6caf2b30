package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Redacted replaces secret values and sensitive attributes.
const Redacted = "[REDACTED]"

// minSecretLen keeps short values (a 4-digit PIN, "true") from blanking unrelated text.
const minSecretLen = 6

type secretSet struct {
	list     []string // longest first, so the Replacer prefers the longest match
	replacer *strings.Replacer
}

var (
	secretsMu sync.Mutex // serialises writers; readers use the atomic snapshot
	secrets   atomic.Pointer[secretSet]
)

// RegisterSecret adds a literal value (password, bearer, client secret, cookie value)
// that must never be written: every later record has it replaced in its message and
// string-like attributes. Values shorter than 6 bytes are ignored.
func RegisterSecret(s string) {
	if len(s) < minSecretLen {
		return
	}
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var list []string
	if cur := secrets.Load(); cur != nil {
		if slices.Contains(cur.list, s) {
			return
		}
		list = slices.Clone(cur.list)
	}
	list = append(list, s)
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(list))
	for _, v := range list {
		pairs = append(pairs, v, Redacted)
	}
	secrets.Store(&secretSet{list: list, replacer: strings.NewReplacer(pairs...)})
}

// redactString is the hot path: one atomic load and a Contains per secret; the Replacer
// runs only when something matched.
func redactString(s string) string {
	set := secrets.Load()
	if set == nil {
		return s
	}
	for _, v := range set.list {
		if strings.Contains(s, v) {
			return set.replacer.Replace(s)
		}
	}
	return s
}

func hasSecrets() bool {
	set := secrets.Load()
	return set != nil && len(set.list) > 0
}

// sensitiveKeys are attribute names redacted whatever their value, in any letter case.
var sensitiveKeys = []string{
	"password", "secret", "clientsecret", "client_secret", "token", "bearer",
	"authorization", "cookie", "set-cookie", "x-amz-security-token",
	"lp-authorization-override",
}

// isSensitiveKey compares with EqualFold rather than a lower-cased copy: every record's
// every attribute passes here, and a name with a capital would cost an allocation.
func isSensitiveKey(k string) bool {
	return slices.ContainsFunc(sensitiveKeys, func(s string) bool { return strings.EqualFold(k, s) })
}

func redactAttr(a slog.Attr) slog.Attr {
	if isSensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactString(v.String()))
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(redactAttrs(v.Group())...)}
	case slog.KindAny:
		if !hasSecrets() {
			return slog.Attr{Key: a.Key, Value: v}
		}
		// Errors, Stringers and structs are rendered by the JSON handler in ways we cannot
		// intercept (MarshalJSON, Error(), json.Marshal through pointers, []byte as
		// base64). Render them every way that could show a secret and, when one does,
		// keep the fmt text with the secret replaced, or drop the value if only a
		// rendering we cannot edit shows it.
		x := v.Any()
		text := fmt.Sprint(x)
		if r := redactString(text); r != text {
			return slog.String(a.Key, r)
		}
		for _, other := range renderings(x) {
			if redactString(other) != other {
				return slog.String(a.Key, Redacted)
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func redactAttrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = redactAttr(a)
	}
	return out
}

// groupOrAttrs is one With/WithGroup call, kept unformatted so that secrets registered
// after the logger was derived are still caught when the record is written.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

type redactingHandler struct {
	inner slog.Handler
	goas  []groupOrAttrs
}

// NewRedactingHandler wraps inner so that nothing reaches it before redaction. inner
// should be a fresh handler: attributes already attached to it are not inspected.
func NewRedactingHandler(inner slog.Handler) slog.Handler {
	return &redactingHandler{inner: inner}
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(groupOrAttrs{attrs: slices.Clone(as)})
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *redactingHandler) with(g groupOrAttrs) *redactingHandler {
	return &redactingHandler{inner: h.inner, goas: append(slices.Clip(h.goas), g)}
}

// Handle rebuilds the record with the stored With/WithGroup calls folded in as nested
// groups, which the JSON handler renders exactly as it would have rendered them itself.
func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	if !slices.ContainsFunc(h.goas, func(g groupOrAttrs) bool { return g.group != "" }) {
		// No group: the stored attributes, then the record's, flat, with no slice
		// between them (the warm path's log line).
		nr := slog.NewRecord(r.Time, r.Level, redactString(r.Message), r.PC)
		for _, g := range h.goas {
			for _, a := range g.attrs {
				nr.AddAttrs(redactAttr(a))
			}
		}
		r.Attrs(func(a slog.Attr) bool {
			nr.AddAttrs(redactAttr(a))
			return true
		})
		return h.inner.Handle(ctx, nr)
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, redactAttr(a))
		return true
	})
	for i := len(h.goas) - 1; i >= 0; i-- {
		g := h.goas[i]
		if g.group != "" {
			if len(attrs) == 0 {
				continue // slog drops empty groups; so do we
			}
			attrs = []slog.Attr{{Key: g.group, Value: slog.GroupValue(attrs...)}}
			continue
		}
		attrs = append(redactAttrs(g.attrs), attrs...)
	}
	nr := slog.NewRecord(r.Time, r.Level, redactString(r.Message), r.PC)
	nr.AddAttrs(attrs...)
	return h.inner.Handle(ctx, nr)
}

// renderings are the texts other than fmt.Sprint under which a value can reach a JSON
// log: its JSON encoding (which follows pointers and calls MarshalJSON), its error text,
// and a byte slice read as text (JSON writes it as base64, which hides nothing from a
// reader who decodes it).
func renderings(x any) []string {
	var out []string
	if b, ok := x.([]byte); ok {
		out = append(out, string(b))
	}
	if e, ok := x.(error); ok {
		out = append(out, safeError(e))
	}
	if b, err := safeJSON(x); err == nil {
		out = append(out, string(b))
	}
	out = append(out, fmt.Sprintf("%+v", x))
	return out
}

func safeError(e error) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	return e.Error()
}

func safeJSON(x any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("marshal panicked: %v", r)
		}
	}()
	return json.Marshal(x)
}
