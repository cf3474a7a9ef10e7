// Runs of bytes in memory, and whether they overlap: the one test behind every
// "do these arrays share memory" check (the dense backward's choice of path,
// the bindings' refusals, the training step's update of tied parameters).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rs {

// [begin, end) in bytes; an empty span overlaps nothing.
struct MemorySpan {
  std::uintptr_t begin, end;
};

inline MemorySpan memory_span(const void* data, std::size_t bytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  return {begin, begin + bytes};
}

inline bool overlap(MemorySpan a, MemorySpan b) { return a.begin < b.end && b.begin < a.end; }

// Whether any two of `spans` overlap (sorted by start: each against the
// furthest end before it).
inline bool any_two_overlap(std::vector<MemorySpan> spans) {
  spans.erase(
      std::remove_if(spans.begin(), spans.end(), [](MemorySpan s) { return s.begin == s.end; }),
      spans.end());
  std::sort(spans.begin(), spans.end(),
            [](MemorySpan a, MemorySpan b) { return a.begin < b.begin; });
  std::uintptr_t furthest_end = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0 && spans[i].begin < furthest_end) return true;
    furthest_end = std::max(furthest_end, spans[i].end);
  }
  return false;
}

// Whether any span of `a` overlaps any span of `b` (spans within one list may
// overlap each other). Sorted by start, each span against the furthest end of
// the other list's spans before it.
inline bool any_overlap_between(const std::vector<MemorySpan>& a,
                                const std::vector<MemorySpan>& b) {
  struct Tagged {
    MemorySpan span;
    int list;
  };
  std::vector<Tagged> all;
  all.reserve(a.size() + b.size());
  for (MemorySpan s : a)
    if (s.begin != s.end) all.push_back({s, 0});
  for (MemorySpan s : b)
    if (s.begin != s.end) all.push_back({s, 1});
  std::sort(all.begin(), all.end(),
            [](const Tagged& x, const Tagged& y) { return x.span.begin < y.span.begin; });
  std::uintptr_t furthest_end[2] = {0, 0};
  for (const Tagged& t : all) {
    if (t.span.begin < furthest_end[1 - t.list]) return true;
    furthest_end[t.list] = std::max(furthest_end[t.list], t.span.end);
  }
  return false;
}

}  // namespace rs
