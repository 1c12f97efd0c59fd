package seed

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports how far a seed is: on a terminal, a bar redrawn in place
// with the rate and the time left; elsewhere (a log, CI), a plain line every
// few seconds.
type progress struct {
	w        io.Writer
	terminal bool
	total    int
	done     int
	start    time.Time
	last     time.Time
}

// lineEvery is how often a plain progress line is written.
const lineEvery = 2 * time.Second

func newProgress(w io.Writer, terminal bool, total int) *progress {
	now := time.Now()
	return &progress{w: w, terminal: terminal, total: total, start: now, last: now}
}

func (p *progress) add(n int) {
	p.done += n
	if p.w == nil {
		return
	}
	now := time.Now()
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s", p.bar(now))
		return
	}
	if now.Sub(p.last) >= lineEvery || p.done == p.total {
		p.last = now
		fmt.Fprintln(p.w, p.line(now))
	}
}

func (p *progress) finish() {
	if p.w != nil && p.terminal && p.total > 0 {
		fmt.Fprintln(p.w)
	}
}

// rate is records per second so far, and eta the time left at that rate.
func (p *progress) rate(now time.Time) (float64, time.Duration) {
	secs := now.Sub(p.start).Seconds()
	if secs <= 0 || p.done == 0 {
		return 0, 0
	}
	rate := float64(p.done) / secs
	return rate, time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second)
}

func (p *progress) bar(now time.Time) string {
	const width = 30
	filled := width * p.done / max(p.total, 1)
	rate, eta := p.rate(now)
	return fmt.Sprintf("[%s%s] %3d%% %d/%d  %.0f records/s  ETA %s ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*p.done/max(p.total, 1), p.done, p.total, rate, eta)
}

func (p *progress) line(now time.Time) string {
	rate, eta := p.rate(now)
	return fmt.Sprintf("seeded %d/%d records (%d%%), %.0f records/s, about %s left",
		p.done, p.total, 100*p.done/max(p.total, 1), rate, eta)
}
