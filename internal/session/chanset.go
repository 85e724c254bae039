package session

// chanSet is the set of channels a session is subscribed to. Most sessions
// hold a handful, and a Go map costs about 200 bytes even for one entry, so
// the set is a slice up to smallSet entries (a linear scan of a few strings)
// and a map beyond. The zero value is empty. Not safe for concurrent use:
// Session.mu guards it.
type chanSet struct {
	few  []string
	many map[string]struct{}
}

const smallSet = 8

func (c *chanSet) has(ch string) bool {
	if c.many != nil {
		_, ok := c.many[ch]
		return ok
	}
	for _, s := range c.few {
		if s == ch {
			return true
		}
	}
	return false
}

func (c *chanSet) len() int {
	if c.many != nil {
		return len(c.many)
	}
	return len(c.few)
}

// add adds ch (once).
func (c *chanSet) add(ch string) {
	if c.many != nil {
		c.many[ch] = struct{}{}
		return
	}
	if c.has(ch) {
		return
	}
	if len(c.few) < smallSet {
		if c.few == nil {
			c.few = make([]string, 0, 1) // one channel is the common case
		}
		c.few = append(c.few, ch)
		return
	}
	c.many = make(map[string]struct{}, 2*smallSet)
	for _, s := range c.few {
		c.many[s] = struct{}{}
	}
	c.many[ch] = struct{}{}
	c.few = nil
}

// del removes ch and reports whether it was in the set.
func (c *chanSet) del(ch string) bool {
	if c.many != nil {
		_, ok := c.many[ch]
		delete(c.many, ch)
		return ok
	}
	for i, s := range c.few {
		if s == ch {
			last := len(c.few) - 1
			c.few[i] = c.few[last]
			c.few[last] = ""
			c.few = c.few[:last]
			return true
		}
	}
	return false
}

// each calls fn for every channel.
func (c *chanSet) each(fn func(ch string)) {
	if c.many != nil {
		for ch := range c.many {
			fn(ch)
		}
		return
	}
	for _, ch := range c.few {
		fn(ch)
	}
}
