package consent

import (
	"errors"
	"fmt"
)

// Error codes shared by every medshare package. The HTTP layer maps each code
// to one status in a single table; only EINTERNAL is logged with its cause.
const (
	EINVALID      = "invalid"      // bad input: 400
	EUNAUTHORIZED = "unauthorized" // no or bad credentials: 401
	EFORBIDDEN    = "forbidden"    // authenticated but not allowed: 403
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // duplicate id, revoke twice: 409
	ETOOLARGE     = "too_large"    // body or field over its limit: 413
	ETOOMANY      = "too_many"     // a rate limit or quota is exhausted: 429
	EINTEGRITY    = "integrity"    // stored data failed its integrity check: 500, never data
	EUNAVAILABLE  = "unavailable"  // store or ledger down: 503
	EINTERNAL     = "internal"     // anything else: 500
)

// Error is medshare's domain error: a machine-readable code and a message
// meant for people. Err, when set, is the underlying cause; it is never shown
// to API callers.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message whose cause is err.
func WrapError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
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

// ErrorMessage returns the human message of the first *Error in err's chain,
// or "internal error" for any other error, so driver messages never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
