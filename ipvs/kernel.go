package ipvs

import (
	"errors"
	"syscall"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// Kernel is the narrow view of an IPVS table the Reconciler needs.
//
// Implementations report failures with the kernel's errno values (wrapped is
// fine) so the Reconciler can tell "already exists" (EEXIST) and "already
// gone" (ESRCH for services, ENOENT for destinations) from real failures.
// These are the values Linux 6.1 returns; on a service create or update,
// ENOENT instead means the scheduler's module could not be loaded.
type Kernel interface {
	// Services lists every service with its destinations, including their
	// connection counters. An empty table is an empty list, not an error.
	Services() ([]Service, error)
	// Service reads one service with its destinations; ESRCH if absent.
	Service(key ServiceKey) (Service, error)

	// CreateService adds a service without destinations (s.Destinations is ignored).
	CreateService(s Service) error
	// UpdateService changes scheduler, flags and persistence of an existing service.
	UpdateService(s Service) error
	// DeleteService removes a service and all its destinations.
	DeleteService(key ServiceKey) error

	CreateDestination(key ServiceKey, d Destination) error
	UpdateDestination(key ServiceKey, d Destination) error
	DeleteDestination(key ServiceKey, d Destination) error
}

// isExist reports a create that found the object already there.
func isExist(err error) bool { return errors.Is(err, syscall.EEXIST) }

// svcGone reports a service operation on a service that is not there. For
// service calls ENOENT means something else: the scheduler module is missing.
func svcGone(err error) bool { return errors.Is(err, syscall.ESRCH) }

// destGone reports a destination operation on a destination (ENOENT) or
// service (ESRCH) that is not there.
func destGone(err error) bool { return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) }

// OpKind names a Kernel call.
type OpKind string

// Kernel calls: the kinds of Write, and the reads Fake also records.
const (
	OpListServices      OpKind = "list-services"
	OpGetService        OpKind = "get-service"
	OpCreateService     OpKind = "create-service"
	OpUpdateService     OpKind = "update-service"
	OpDeleteService     OpKind = "delete-service"
	OpCreateDestination OpKind = "create-destination"
	OpUpdateDestination OpKind = "update-destination"
	OpDeleteDestination OpKind = "delete-destination"
)

// IsWrite reports whether the call changes the table.
func (k OpKind) IsWrite() bool { return k != OpListServices && k != OpGetService }

// Write is one change to the table, as a Batcher takes it. Kind is one of
// OpCreateService, OpUpdateService, OpDeleteService, OpCreateDestination,
// OpUpdateDestination and OpDeleteDestination. Service is the whole service
// for service creates and updates (its Destinations are ignored); the other
// kinds use only Service.Key. Dest is the destination of destination writes.
type Write struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

// Batcher is a Kernel that can send many writes in one round trip, as
// netlink allows. The Reconciler uses it when the Kernel has it.
type Batcher interface {
	Kernel
	// Batch performs ws in order, each on its own: a failed write does not
	// stop the ones after it (a destination create after its service's
	// failed create fails in turn, with ESRCH). It returns one error per
	// write, nil for success, with the errnos described on Kernel. Writes
	// whose answer was lost fail with an error matching ErrOutcomeUnknown:
	// they may or may not have happened.
	Batch(ws []Write) []error
}

// ErrOutcomeUnknown marks a batched write whose answer never came back (the
// socket lost it, or the batch could not be sent whole). It is ipvsnl's,
// so that errors.Is matches what Netlink passes on.
var ErrOutcomeUnknown = ipvsnl.ErrOutcomeUnknown
