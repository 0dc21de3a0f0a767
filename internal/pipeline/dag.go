package pipeline

import (
	"container/heap"
	"slices"
	"strings"
)

// cycles reports one cycle per strongly connected group of stages. edges[i] lists the
// stages (by file index) that stage i needs. The graph is the file's, before matrix
// expansion: an expanded graph has a cycle exactly when this one does, and its names are
// the ones the user wrote.
func (c *compiler) cycles(stages []*rawStage, edges [][]int) {
	for _, scc := range components(edges) {
		if len(scc) < 2 {
			continue // self-needs are reported, and left out of edges, before this
		}
		start := slices.Min(scc)
		path := shortestCycle(start, scc, edges)
		names := make([]string, len(path))
		for i, j := range path {
			names[i] = stages[j].name
		}
		c.errorf(stages[start].key, "cycle: %s (each stage needs the next; remove one of these needs)", strings.Join(names, " -> "))
	}
}

// components returns the strongly connected components of the graph (Tarjan's algorithm).
func components(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n) // 0 = unvisited, else visit order + 1
	low := make([]int, n)
	onStack := make([]bool, n)
	var stack []int
	var out [][]int
	next := 1
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			switch {
			case index[w] == 0:
				visit(w)
				low[v] = min(low[v], low[w])
			case onStack[w]:
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var scc []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for v := range n {
		if index[v] == 0 {
			visit(v)
		}
	}
	return out
}

// shortestCycle returns a shortest path start -> ... -> start inside scc, following needs
// in the order they are written; the shortest is the easiest to read and to break.
func shortestCycle(start int, scc []int, edges [][]int) []int {
	in := make(map[int]bool, len(scc))
	for _, v := range scc {
		in[v] = true
	}
	parent := map[int]int{start: -1}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range edges[v] {
			if w == start {
				var path []int
				for u := v; u != -1; u = parent[u] {
					path = append(path, u)
				}
				slices.Reverse(path)
				return append(path, start)
			}
			if _, seen := parent[w]; !seen && in[w] {
				parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start, start} // unreachable for a component of two or more
}

// topoOrder sorts stages (given in file order) so that each comes after its needs, using
// Kahn's algorithm and taking, among the stages ready at each point, the earliest in the
// file. The caller has rejected cycles and unknown needs.
func topoOrder(stages []*Stage) []*Stage {
	pos := make(map[string]int, len(stages))
	for i, s := range stages {
		pos[s.Name] = i
	}
	waiting := make([]int, len(stages))
	dependents := make([][]int, len(stages))
	for i, s := range stages {
		for _, n := range s.Needs {
			j := pos[n]
			dependents[j] = append(dependents[j], i)
			waiting[i]++
		}
	}
	ready := &minHeap{}
	for i, w := range waiting {
		if w == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*Stage, 0, len(stages))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, stages[i])
		for _, j := range dependents[i] {
			if waiting[j]--; waiting[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	return out
}

type minHeap []int

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Downstream returns the names of every stage that needs the named one, directly or
// through others, in the pipeline's (topological) order: what a failure of it skips.
// name is a stage's Name, or the Base of a matrix stage to mean all its expansions; the
// named stages themselves are not in the result. An unknown name has none.
func (p *Pipeline) Downstream(name string) []string {
	dependents := map[string][]string{}
	for _, s := range p.Stages {
		for _, n := range s.Needs {
			dependents[n] = append(dependents[n], s.Name)
		}
	}
	return p.reach(name, func(s string) []string { return dependents[s] })
}

// Upstream returns the names of every stage the named one needs, directly or through
// others, in the pipeline's (topological) order: whose artifacts it may use. name is read
// as for Downstream.
func (p *Pipeline) Upstream(name string) []string {
	needs := make(map[string][]string, len(p.Stages))
	for _, s := range p.Stages {
		needs[s.Name] = s.Needs
	}
	return p.reach(name, func(s string) []string { return needs[s] })
}

// reach walks next from the stages name selects and lists what it reaches in stage order.
// It walks the edges rather than relying on the order of Stages, so a hand-built Pipeline
// gets a complete answer too.
func (p *Pipeline) reach(name string, next func(string) []string) []string {
	seeds := map[string]bool{}
	var queue []string
	for _, s := range p.Stages {
		if s.Name == name || s.Base == name {
			seeds[s.Name] = true
			queue = append(queue, s.Name)
		}
	}
	found := map[string]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range next(v) {
			if !found[w] && !seeds[w] {
				found[w] = true
				queue = append(queue, w)
			}
		}
	}
	var out []string
	for _, s := range p.Stages {
		if found[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out
}
