package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

var errClosed = errors.New("closed")

// TestBatchesFormUnderLoad: while one batch commits, the callers that
// arrive meanwhile form the next ones, and every caller gets its own result.
func TestBatchesFormUnderLoad(t *testing.T) {
	synctest.Test(t, testBatchesFormUnderLoad)
}

func testBatchesFormUnderLoad(t *testing.T) {
	closing := make(chan struct{})
	q := New[int, int](4, closing, errClosed)
	first := make(chan struct{})
	release := make(chan struct{})
	var sizes []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(func(batch []int) []int {
			if len(sizes) == 0 {
				close(first)
				<-release // hold the first commit while the others queue
			}
			sizes = append(sizes, len(batch))
			out := make([]int, len(batch))
			for i, v := range batch {
				out[i] = v * 10
			}
			return out
		})
	}()
	var wg sync.WaitGroup
	submit := func(v int) {
		defer wg.Done()
		if res, err := q.Submit(context.Background(), v); err != nil || res != v*10 {
			t.Errorf("Submit(%d) = %d, %v; want %d", v, res, err, v*10)
		}
	}
	wg.Add(1)
	go submit(0)
	<-first
	for v := 1; v <= 9; v++ {
		wg.Add(1)
		go submit(v)
	}
	synctest.Wait() // the nine wait on the hand-over while the writer commits
	close(release)
	wg.Wait()
	close(closing)
	<-done
	total := 0
	for _, n := range sizes {
		if n > 4 {
			t.Fatalf("batch sizes %v, want at most 4", sizes)
		}
		total += n
	}
	if total != 10 || len(sizes) > 4 {
		t.Fatalf("batch sizes %v: want 10 requests in 4 batches or fewer", sizes)
	}
	t.Logf("batch sizes %v", sizes)
}

func TestClosedAndCanceled(t *testing.T) {
	closing := make(chan struct{})
	q := New[int, int](8, closing, errClosed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Submit(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit with an ended context: %v", err)
	}
	close(closing)
	q.Run(func(batch []int) []int { t.Fatalf("commit of %v after close", batch); return nil })
	if _, err := q.Submit(context.Background(), 1); !errors.Is(err, errClosed) {
		t.Fatalf("Submit after close: %v, want the closed error", err)
	}
}
