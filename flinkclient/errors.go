package flinkclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind says what a caller should do about an error.
type Kind int

// The kinds of error a call can return.
const (
	// KindUnknown is an error that fits no other kind; treat it as a bug.
	KindUnknown Kind = iota
	// KindNotReachable: the JobManager did not answer (connection refused,
	// reset, timed out, or a 502/503/504 while it starts or elects a leader).
	// Retry later.
	KindNotReachable
	// KindNotFound: the job, operation, jar or endpoint does not exist (404).
	KindNotFound
	// KindInProgress: an asynchronous operation has not finished yet. Poll again.
	KindInProgress
	// KindOperationFailed: an asynchronous operation (savepoint, checkpoint,
	// disposal) finished with a failure; Message carries Flink's root cause.
	KindOperationFailed
	// KindBadRequest: Flink rejected the request as malformed (400, 405, 415…).
	// This is a bug on our side or an invalid input; retrying will not help.
	KindBadRequest
	// KindConflict: the request conflicts with the job's state, e.g. cancelling
	// a job that already reached a terminal state, or submitting a job id that
	// was already submitted (409).
	KindConflict
	// KindServer: Flink answered with a server error (500 and other 5xx);
	// usually transient, retry with back-off.
	KindServer
)

var kindNames = [...]string{
	KindUnknown:         "unknown",
	KindNotReachable:    "not reachable",
	KindNotFound:        "not found",
	KindInProgress:      "in progress",
	KindOperationFailed: "operation failed",
	KindBadRequest:      "bad request",
	KindConflict:        "conflict",
	KindServer:          "server error",
}

// String names the kind.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Sentinel errors; errors.Is(err, ErrNotFound) is true for every *Error of the
// matching kind.
var (
	ErrNotReachable    = errors.New("flink jobmanager not reachable")
	ErrNotFound        = errors.New("not found")
	ErrInProgress      = errors.New("operation in progress")
	ErrOperationFailed = errors.New("operation failed")
	ErrBadRequest      = errors.New("bad request")
	ErrConflict        = errors.New("conflict")
	ErrServer          = errors.New("flink server error")
)

func (k Kind) sentinel() error {
	switch k {
	case KindNotReachable:
		return ErrNotReachable
	case KindNotFound:
		return ErrNotFound
	case KindInProgress:
		return ErrInProgress
	case KindOperationFailed:
		return ErrOperationFailed
	case KindBadRequest:
		return ErrBadRequest
	case KindConflict:
		return ErrConflict
	case KindServer:
		return ErrServer
	}
	return nil
}

// Error is the error every call returns for a failure of Flink or of the
// connection to it. Use errors.Is with the sentinels, or errors.As to read
// the fields.
type Error struct {
	// Kind classifies the error by what the caller should do.
	Kind Kind
	// StatusCode is the HTTP status Flink answered with, 0 if none.
	StatusCode int
	// Op names the call, e.g. "trigger savepoint for job 0123…".
	Op string
	// Message is Flink's reason in readable form: the root cause's first line,
	// not a Java stack dump.
	Message string
	// Err is the underlying transport error, if any.
	Err error
}

// Error formats the error as "op: message (HTTP status)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	switch {
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Kind.String())
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	return b.String()
}

// Unwrap returns the underlying transport error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && s == target
}

// KindOf returns the Kind of the first *Error in err's chain, KindUnknown if none.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return KindUnknown
}

// Retryable reports whether retrying the same call later may succeed: the
// JobManager was not reachable, answered with a server error, or the
// operation is still in progress.
func Retryable(err error) bool {
	switch KindOf(err) {
	case KindNotReachable, KindServer, KindInProgress:
		return true
	}
	return false
}

// kindForStatus maps an HTTP status to a Kind.
func kindForStatus(code int) Kind {
	switch {
	case code == http.StatusNotFound:
		return KindNotFound
	case code == http.StatusConflict:
		return KindConflict
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return KindNotReachable
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return KindServer
	case code >= 400 && code < 500:
		return KindBadRequest
	case code >= 500:
		return KindServer
	}
	return KindUnknown
}

// readableErrors turns the "errors" array of a Flink error body into one
// readable line. Flink often puts a whole Java stack trace into an entry
// ("<Exception on server side: …>"); we keep the generic first entries and
// the root cause of each trace.
func readableErrors(errs []string) string {
	var parts []string
	seen := map[string]bool{}
	for _, e := range errs {
		m := ReadableCause(e)
		if m == "" || seen[m] {
			continue
		}
		seen[m] = true
		parts = append(parts, m)
	}
	return strings.Join(parts, ": ")
}

// ReadableCause extracts a readable message from a Java stack trace as Flink
// prints it: the root cause's exception class (without package) and message.
// Text that is not a stack trace is returned trimmed, on one line.
func ReadableCause(trace string) string {
	trace = strings.TrimSpace(trace)
	trace = strings.TrimPrefix(trace, "<Exception on server side:")
	trace = strings.TrimSuffix(trace, "End of exception on server side>")
	lines := strings.Split(strings.TrimSpace(trace), "\n")

	// Each cause is a header line ("pkg.Class: message" or "Caused by: …")
	// optionally followed by more message lines, then "\tat …" frames.
	var causes [][]string
	inFrames := false
	for _, raw := range lines {
		l := strings.TrimRight(raw, "\r")
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			continue
		case isFrameLine(t):
			inFrames = true
			continue
		case strings.HasPrefix(t, "Caused by: "):
			causes = append(causes, []string{strings.TrimPrefix(t, "Caused by: ")})
			inFrames = false
		case strings.HasPrefix(t, "Suppressed: "):
			// Suppressed exceptions are side notes; skip them and their frames.
			inFrames = true
		case len(causes) == 0:
			causes = append(causes, []string{t})
		case !inFrames:
			causes[len(causes)-1] = append(causes[len(causes)-1], t)
		}
	}
	if len(causes) == 0 {
		return ""
	}
	root := causes[len(causes)-1]
	msg := stripJavaClass(root[0])
	// Flink's REST layer wraps its own readable messages in this class; the
	// class name adds nothing.
	msg = strings.TrimPrefix(msg, "RestHandlerException: ")
	if len(causes) == 1 && len(root) > 1 {
		// A plain message of several lines: keep at most three.
		n := min(len(root), 3)
		msg = strings.Join(append([]string{msg}, root[1:n]...), " ")
	}
	return msg
}

func isFrameLine(t string) bool {
	return strings.HasPrefix(t, "at ") || (strings.HasPrefix(t, "...") && strings.HasSuffix(t, "more"))
}

// stripJavaClass shortens "java.util.concurrent.CompletionException: msg" to
// "CompletionException: msg", and drops wrapper prefixes repeated in the
// message ("CompletionException: org.apache.…FlinkException: msg" becomes
// "FlinkException: msg").
func stripJavaClass(line string) string {
	for {
		cls, rest, ok := strings.Cut(line, ": ")
		if !ok || !looksLikeJavaClass(cls) {
			if looksLikeJavaClass(line) {
				return simpleName(line)
			}
			return line
		}
		rest = strings.TrimSpace(rest)
		next, _, ok2 := strings.Cut(rest, ": ")
		if ok2 && looksLikeJavaClass(next) {
			line = rest
			continue
		}
		if looksLikeJavaClass(rest) {
			return simpleName(rest)
		}
		return simpleName(cls) + ": " + rest
	}
}

// looksLikeJavaClass reports whether s is a qualified Java class name such
// as org.apache.flink.util.FlinkException.
func looksLikeJavaClass(s string) bool {
	if !strings.Contains(s, ".") || strings.ContainsAny(s, " \t/:") {
		return false
	}
	last := s[strings.LastIndex(s, ".")+1:]
	if last == "" || last[0] < 'A' || last[0] > 'Z' {
		return false
	}
	first := s[0]
	return first >= 'a' && first <= 'z'
}

func simpleName(cls string) string {
	return cls[strings.LastIndex(cls, ".")+1:]
}
