// Package labplan holds what the lab's host side and its in-guest program
// share: the plan (a declarative list of steps), the fixed topology, the
// generators for daemon configuration files and the results with the
// arithmetic over them.
//
// It has no side effects so that it can be unit-tested anywhere and linked
// into the static guest binary.
package labplan
