package ipvs

import (
	"errors"
	"syscall"
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
