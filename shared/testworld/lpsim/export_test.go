package lpsim

// WaitIdle blocks until no handler is running, so tests can prove a handler ended
// when its client went away.
func (s *Sim) WaitIdle() { s.waitIdle() }
