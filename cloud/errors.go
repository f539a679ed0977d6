package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// Kind sorts API failures by what the mover does about them.
type Kind int

const (
	// KindTransient: retried with backoff (5xx, timeouts, connection
	// errors, garbled responses).
	KindTransient Kind = iota
	// KindThrottle: retried with backoff, counted apart.
	KindThrottle
	// KindPermission: not retried for Config.PermissionBackoff.
	KindPermission
	// KindNotFound: an ID in the configuration does not exist (or is
	// malformed); retrying will not help until someone fixes it.
	KindNotFound
	// KindInvalid: EC2 refused the request as it stands (InvalidParameterValue
	// and friends); it may succeed once earlier changes have settled.
	KindInvalid
	// KindCanceled: the caller's context ended.
	KindCanceled
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindThrottle:
		return "throttled"
	case KindPermission:
		return "permission"
	case KindNotFound:
		return "not-found"
	case KindInvalid:
		return "invalid"
	case KindCanceled:
		return "canceled"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// PermissionError means the instance's credentials may not make a call the
// mover needs: fix the IAM policy (see the package documentation).
type PermissionError struct {
	Op      string // the EC2 action, e.g. AssociateAddress
	Code    string // UnauthorizedOperation, AuthFailure, ...
	Message string
	// Until is when the mover will try the API again.
	Until time.Time
	Err   error
}

// credentialCodes are the permission failures where EC2 could not tell
// who is calling: granting an action cannot fix them.
var credentialCodes = []string{"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch",
	"MissingAuthenticationToken", "UnrecognizedClientException"}

// Credentials reports whether EC2 refused the caller's credentials
// themselves, rather than what the policy allows them.
func (e *PermissionError) Credentials() bool { return slices.Contains(credentialCodes, e.Code) }

func (e *PermissionError) Error() string {
	var s string
	if e.Credentials() {
		s = fmt.Sprintf("ec2 %s: EC2 could not validate the credentials (%s): %s; check that the instance profile's role is attached and its credentials reach director (instance metadata, or the environment of the unit), that the clock is right (a skewed clock fails signatures), and the region", e.Op, e.Code, e.Message)
	} else {
		s = fmt.Sprintf("ec2 %s: permission denied (%s): %s; grant ec2:%s to the instance role", e.Op, e.Code, e.Message, e.Op)
	}
	if !e.Until.IsZero() {
		s += fmt.Sprintf("; no API calls until %s", e.Until.Format(time.TimeOnly))
	}
	return s
}

func (e *PermissionError) Unwrap() error { return e.Err }

// APIError is any other failed EC2 call, classified.
type APIError struct {
	Op   string
	Kind Kind
	Code string // EC2 error code, if the response had one
	Err  error
}

func (e *APIError) Error() string { return fmt.Sprintf("ec2 %s (%s): %v", e.Op, e.Kind, e.Err) }

func (e *APIError) Unwrap() error { return e.Err }

// Error codes by kind. EC2 spells throttling several ways across its API
// generations; the SDK's own retryer uses the same lists.
var (
	throttleCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
		"RequestThrottled", "RequestThrottledException", "TooManyRequestsException", "SlowDown", "EC2ThrottledException"}
	permissionCodes = []string{"UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"MissingAuthenticationToken", "OptInRequired", "Blocked", "AccessDenied", "AccessDeniedException", "UnrecognizedClientException"}
	transientCodes = []string{"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
		"RequestTimeout", "RequestTimeoutException", "ExpiredToken", "RequestExpired", "IDPCommunicationError"}
)

// Classify sorts err, returned by an SDK call, by what to do about it.
// parent is the caller's context: a per-call timeout is transient, the
// caller giving up is not. Anything without an EC2 error code (connection
// refused, timeouts, unparsable bodies, an HTML page from a proxy) is
// transient: retrying is the only sensible response.
func Classify(parent context.Context, err error) (Kind, string) {
	if parent.Err() != nil {
		return KindCanceled, ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() == "" || ae.ErrorCode() == "UnknownError" {
		return KindTransient, ""
	}
	code := ae.ErrorCode()
	switch {
	case slices.Contains(throttleCodes, code):
		return KindThrottle, code
	case slices.Contains(permissionCodes, code):
		return KindPermission, code
	case slices.Contains(transientCodes, code):
		return KindTransient, code
	case strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, ".Malformed"):
		return KindNotFound, code
	}
	switch s := httpStatus(err); {
	case s == 429:
		return KindThrottle, code
	case s >= 500:
		return KindTransient, code
	}
	return KindInvalid, code
}

// httpStatus is the HTTP status of the response err came with, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// apiMessage is the EC2 message of err, or err itself.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// ErrContestBackoff is returned (wrapped) by Take and Announce while the
// mover waits out a split-brain backoff that outlasts the caller's context;
// the caller should simply retry later.
var ErrContestBackoff = errors.New("backing off before taking the VIP back")

// IsPermission reports whether err is or wraps a *PermissionError.
func IsPermission(err error) bool {
	var pe *PermissionError
	return errors.As(err, &pe)
}
