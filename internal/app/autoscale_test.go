package app

import (
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
)

func TestScalerDecide(t *testing.T) {
	type step struct {
		after   time.Duration // since the previous sample
		current int
		load    float64
		want    int
	}
	as := &config.Autoscale{Min: 1, Max: 4, Inflight: 2, Cooldown: config.Duration(2 * time.Second)}
	tests := []struct {
		name  string
		steps []step
	}{
		{"load over the target adds at once, rounded up", []step{
			{0, 1, 5, 3}, // 5 in flight at 2 each: 3 instances
		}},
		{"one burst is averaged over a second", []step{
			{0, 1, 0, 1}, {250 * time.Millisecond, 1, 0, 1}, {250 * time.Millisecond, 1, 0, 1},
			{250 * time.Millisecond, 1, 6, 1}, // 6 alone would want 3; the second's average, 1.5, wants 1
		}},
		{"never over max", []step{{0, 1, 100, 4}}},
		{"never under min, even idle", []step{{0, 1, 0, 1}, {3 * time.Second, 1, 0, 1}}},
		{"fewer only after a whole cooldown under the target", []step{
			{0, 4, 0, 4}, {time.Second, 4, 0, 4}, {time.Second, 4, 0, 1},
		}},
		{"a sample over the target in the cooldown keeps its count", []step{
			{0, 4, 0, 4}, {500 * time.Millisecond, 4, 5, 4}, {500 * time.Millisecond, 4, 0, 4},
			{time.Second, 4, 0, 2}, // the most any sample of the window wanted (average 2.5: 2)
		}},
		{"load rising again resets the cooldown", []step{
			{0, 3, 0, 3}, {time.Second, 3, 20, 4}, {time.Second, 4, 0, 4}, {time.Second, 4, 0, 4},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(as)
			now := time.Unix(1000, 0)
			for i, st := range tc.steps {
				now = now.Add(st.after)
				got, why := s.decide(now, st.current, st.load)
				if got != st.want {
					t.Fatalf("step %d (current %d, load %g): %d (%s); want %d", i, st.current, st.load, got, why, st.want)
				}
			}
		})
	}
}

func TestScalerCPUTarget(t *testing.T) {
	s := newScaler(&config.Autoscale{Min: 2, Max: 8, CPU: 70, Cooldown: config.Duration(time.Minute)})
	if got, _ := s.decide(time.Unix(0, 0), 2, 300); got != 5 { // 300 % over 70 % each
		t.Errorf("300 %% CPU at 70 %% per instance: %d; want 5", got)
	}
}
