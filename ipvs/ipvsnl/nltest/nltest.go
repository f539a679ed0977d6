// Package nltest builds generic netlink replies shaped as the kernel sends
// them, for the tests of ipvsnl's decoders and of what reads through it.
package nltest

import (
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Nested builds a reply holding one nested attribute typ around fill's.
func Nested(t testing.TB, typ uint16, fill func(ae *netlink.AttributeEncoder)) genetlink.Message {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Nested(typ, func(nae *netlink.AttributeEncoder) error {
		fill(nae)
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return genetlink.Message{Data: b}
}
