package seed

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// progress reports how far a seed is: on a terminal, a bar redrawn in place
// with the rate and the time left; elsewhere (a log, CI), a log record every
// few seconds, in the log's format, which a program can read.
type progress struct {
	bar   io.Writer
	log   *slog.Logger
	total int
	done  int
	start time.Time
	last  time.Time
}

// recordEvery is how often a progress record is logged.
const recordEvery = 2 * time.Second

func newProgress(bar io.Writer, log *slog.Logger, total int) *progress {
	now := time.Now()
	return &progress{bar: bar, log: log, total: total, start: now, last: now}
}

func (p *progress) add(n int) {
	p.done += n
	now := time.Now()
	switch {
	case p.bar != nil:
		fmt.Fprintf(p.bar, "\r%s", p.drawBar(now))
	case p.log != nil && (now.Sub(p.last) >= recordEvery || p.done == p.total):
		p.last = now
		rate, eta := p.rate(now)
		p.log.Info(fmt.Sprintf("seeded %d/%d records (%d%%), %.0f records/s, about %s left", p.done, p.total, p.percent(), rate, eta),
			"done", p.done, "total", p.total, "records_per_second", int(rate), "eta_seconds", int(eta.Seconds()))
	}
}

func (p *progress) finish() {
	if p.bar != nil && p.total > 0 {
		fmt.Fprintln(p.bar)
	}
}

func (p *progress) percent() int { return 100 * p.done / max(p.total, 1) }

// rate is records per second so far, and eta the time left at that rate.
func (p *progress) rate(now time.Time) (float64, time.Duration) {
	secs := now.Sub(p.start).Seconds()
	if secs <= 0 || p.done == 0 {
		return 0, 0
	}
	rate := float64(p.done) / secs
	return rate, time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second)
}

func (p *progress) drawBar(now time.Time) string {
	const width = 30
	filled := width * p.done / max(p.total, 1)
	rate, eta := p.rate(now)
	return fmt.Sprintf("[%s%s] %3d%% %d/%d  %.0f records/s  ETA %s ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.percent(), p.done, p.total, rate, eta)
}
