package chat

// ForgetMember drops the cached role of user in room (0, 0: every cached
// role), as a change made through this Service would: the server calls it
// for a membership change another node made (cluster mode). It does not
// call Config.MemberChanged.
func (s *Service) ForgetMember(room, user int64) {
	if room == 0 && user == 0 {
		s.members.forgetAll()
		return
	}
	s.members.forget(memberKey{room, user})
}

// PauseMemberCache turns the membership cache off (every check reads the
// store) while paused, and drops what it held: the server pauses it while
// the node cannot hear the other nodes' changes (cut off from the bus).
func (s *Service) PauseMemberCache(paused bool) {
	s.members.paused.Store(paused)
	s.members.forgetAll()
}
