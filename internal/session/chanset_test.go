package session

import (
	"fmt"
	"slices"
	"testing"
)

// TestChanSet runs the set through the slice form, the switch to a map
// beyond smallSet entries, and back to empty, against a map as the model.
func TestChanSet(t *testing.T) {
	var c chanSet
	model := map[string]bool{}
	check := func(step string) {
		t.Helper()
		if c.len() != len(model) {
			t.Fatalf("%s: len %d, want %d", step, c.len(), len(model))
		}
		var got []string
		c.each(func(ch string) { got = append(got, ch) })
		slices.Sort(got)
		var want []string
		for ch := range model {
			want = append(want, ch)
			if !c.has(ch) {
				t.Fatalf("%s: has(%q) false", step, ch)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: each gave %v, want %v", step, got, want)
		}
	}
	check("empty")
	if c.del("x") || c.has("x") {
		t.Fatal("empty set claims x")
	}
	for i := range 2*smallSet + 3 {
		ch := fmt.Sprintf("room:%d", i)
		c.add(ch)
		c.add(ch) // twice: still once
		model[ch] = true
		check("add " + ch)
		if i == 0 && cap(c.few) != 1 {
			t.Fatalf("one channel holds a slice of cap %d, want 1", cap(c.few))
		}
		if i < smallSet && c.many != nil || i >= smallSet && c.many == nil {
			t.Fatalf("after %d channels: map %v", i+1, c.many != nil)
		}
	}
	for i := range 2*smallSet + 3 {
		ch := fmt.Sprintf("room:%d", i)
		if !c.del(ch) || c.del(ch) {
			t.Fatalf("del(%q) twice did not report true then false", ch)
		}
		delete(model, ch)
		check("del " + ch)
	}
	var small chanSet
	small.add("a")
	small.add("b")
	small.add("c")
	if !small.del("a") || small.has("a") || !small.has("c") || !small.has("b") {
		t.Fatal("deleting the first of three lost another")
	}
}
