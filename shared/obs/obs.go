// Package obs sets up structured logging: JSON records in the shape Lambda's log
// controls understand, request ids, and redaction of secrets before anything is written.
package obs

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Lambda's log levels beyond slog's four.
const (
	LevelTrace = slog.Level(-8)
	LevelFatal = slog.Level(12)
)

// ParseLevel reads a Lambda log level name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, any
// case). ok is false for anything else.
func ParseLevel(s string) (level slog.Level, ok bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRACE":
		return LevelTrace, true
	case "DEBUG":
		return slog.LevelDebug, true
	case "INFO":
		return slog.LevelInfo, true
	case "WARN", "WARNING":
		return slog.LevelWarn, true
	case "ERROR":
		return slog.LevelError, true
	case "FATAL":
		return LevelFatal, true
	}
	return slog.LevelInfo, false
}

// LevelFromEnv reads AWS_LAMBDA_LOG_LEVEL, which Lambda sets from the function's logging
// config; unset or unknown means INFO.
func LevelFromEnv(getenv func(string) string) slog.Level {
	l, _ := ParseLevel(getenv("AWS_LAMBDA_LOG_LEVEL"))
	return l
}

// NewLogger writes JSON records through the redacting handler. Keys follow Lambda's JSON
// log format (timestamp, level, message) so its level filtering and console work on them.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return slog.New(NewRedactingHandler(h))
}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		a.Key = "timestamp"
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		// slog would print DEBUG-4 and ERROR+4; Lambda filters on its own names. A
		// string, because the JSON handler writes a Level through encoding/json.
		if l, ok := a.Value.Any().(slog.Level); ok {
			switch {
			case l < slog.LevelDebug:
				a.Value = slog.StringValue("TRACE")
			case l > slog.LevelError:
				a.Value = slog.StringValue("FATAL")
			default:
				a.Value = slog.StringValue(l.String())
			}
		}
	}
	return a
}

type requestIDKey struct{}

// WithRequestID stores a request id for Logger; it wins over the Lambda context's id
// (e.g. the API Gateway request id, or an SQS message id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// Logger returns base with a requestId attribute from ctx: WithRequestID's value, else
// the Lambda invocation's AwsRequestID, else base unchanged.
func Logger(ctx context.Context, base *slog.Logger) *slog.Logger {
	if id, _ := ctx.Value(requestIDKey{}).(string); id != "" {
		return base.With("requestId", id)
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return base.With("requestId", lc.AwsRequestID)
	}
	return base
}

// URL is a URL as logs and error texts show it: scheme://host/path, with "?…" for a
// query, which may carry a token. Userinfo and the fragment are left out too.
func URL(raw string) string {
	// A warm function forwards to the same few URLs again and again: the last one's
	// answer saves the parse.
	if last := lastURL.Load(); last != nil && last.raw == raw {
		return last.shown
	}
	shown := parseURL(raw)
	lastURL.Store(&shownURL{raw, shown})
	return shown
}

type shownURL struct{ raw, shown string }

var lastURL atomic.Pointer[shownURL]

func parseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?…"
	}
	return s
}
