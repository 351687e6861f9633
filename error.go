package kycd

import (
	"errors"
	"fmt"
)

// Application error codes. Adapters translate the errors of the outside world
// (driver errors, bad input) into these, and the HTTP layer maps each code to
// one status.
const (
	EINVALID      = "invalid"
	EUNAUTHORIZED = "unauthorized"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is an application error: a code a caller can act on and a message
// safe to show to the client.
type Error struct {
	Code    string
	Message string
	Err     error // the cause, for logs; never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Unrecorded marks a failure to record an event as EUNAVAILABLE unless it
// already has a code: whatever went wrong, nothing was committed, and the
// sender must try again (Ralio retries a 503, never a 4xx).
func Unrecorded(err error) error {
	if err != nil && ErrorCode(err) == EINTERNAL {
		return &Error{Code: EUNAVAILABLE, Message: "store could not record the event", Err: err}
	}
	return err
}

// ErrorMessage returns the client-safe message of err: the message of its
// *Error, or a generic sentence for internal errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
