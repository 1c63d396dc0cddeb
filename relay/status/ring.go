package status

// point is one sample of the charts.
type point struct {
	t                            int64
	accepted, delivered, dropped num
	backlog, ackP50, ackP99      num
}

// ring holds the last cap(pts) points; the oldest is overwritten.
type ring struct {
	pts  []point
	next int // where the next point goes once pts is full
}

func newRing(n int) ring { return ring{pts: make([]point, 0, n)} }

func (r *ring) add(p point) {
	if len(r.pts) < cap(r.pts) {
		r.pts = append(r.pts, p)
		return
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % len(r.pts)
}

// series returns the points oldest first, one slice per chart line.
func (r *ring) series() Series {
	n := len(r.pts)
	s := Series{T: make([]int64, 0, n), Accepted: make([]num, 0, n), Delivered: make([]num, 0, n), Dropped: make([]num, 0, n),
		Backlog: make([]num, 0, n), AckP50: make([]num, 0, n), AckP99: make([]num, 0, n)}
	for i := range n {
		p := r.pts[(r.next+i)%n]
		s.T = append(s.T, p.t)
		s.Accepted = append(s.Accepted, p.accepted)
		s.Delivered = append(s.Delivered, p.delivered)
		s.Dropped = append(s.Dropped, p.dropped)
		s.Backlog = append(s.Backlog, p.backlog)
		s.AckP50 = append(s.AckP50, p.ackP50)
		s.AckP99 = append(s.AckP99, p.ackP99)
	}
	return s
}
