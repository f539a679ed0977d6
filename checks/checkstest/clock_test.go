package checkstest

import (
	"slices"
	"testing"
	"time"
)

func TestAdvanceFiresInOrder(t *testing.T) {
	c := NewClock()
	start := c.Now()
	var got []string
	c.AfterFunc(2*time.Second, func() { got = append(got, "b") })
	c.AfterFunc(time.Second, func() {
		got = append(got, "a")
		c.AfterFunc(500*time.Millisecond, func() { got = append(got, "a2") }) // due within the same Advance
	})
	c.AfterFunc(2*time.Second, func() { got = append(got, "c") }) // same time as b: after it
	stopped := c.AfterFunc(time.Second, func() { got = append(got, "never") })
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop should report true once")
	}
	c.AfterFunc(3*time.Second, func() { got = append(got, "late") })
	c.Advance(2 * time.Second)
	if want := []string{"a", "a2", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
	if d := c.Now().Sub(start); d != 2*time.Second {
		t.Errorf("clock moved %v, want 2s", d)
	}
}

func TestSkipFiresNothingUntilAdvance(t *testing.T) {
	c := NewClock()
	fired := false
	c.AfterFunc(time.Second, func() { fired = true })
	c.Skip(2 * time.Second)
	if fired {
		t.Fatal("Skip fired a timer")
	}
	c.Advance(0)
	if !fired {
		t.Fatal("Advance(0) after Skip did not fire the overdue timer")
	}
}
