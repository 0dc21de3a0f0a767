package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// suggest returns the candidate closest to s when it is close enough to be a typo (edit
// distance at most 2, counting a swap of neighbours as one edit), or "".
func suggest(s string, candidates []string) string {
	if to, ok := otherCI[s]; ok && slices.Contains(candidates, to) {
		return to
	}
	best, bestD := "", 3
	for _, c := range candidates {
		d := distance(strings.ToLower(s), strings.ToLower(c))
		// Two edits turn any two-letter word into any other; require the rest to carry
		// the resemblance.
		if d < bestD && d < len([]rune(c)) && d < len([]rune(s)) {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean is suggest as a parenthesised hint: ` (did you mean "steps"?)`, or "".
func didYouMean(s string, candidates []string) string {
	if c := suggest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// distance is the optimal string alignment distance: Levenshtein plus transposition of
// adjacent runes, so "tset" is one edit from "test".
func distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// Three rows suffice: the transposition looks back two rows.
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
