// What a hidden layer that fires on no sample is: the one statement of the
// rule "underflow is collapse, not mask death", used by the born-dead kernel
// and, through the binding, by reluscope.born_dead.
#pragma once

namespace rs {

enum class LayerVerdict : int {
  fires = 0,         // some unit fires (pre-activation > 0) on some sample
  dead_by_sign = 1,  // no unit fires and some pre-activation is negative: a dead mask
  underflowed = 2,   // no unit fires and every pre-activation is exactly 0: the
                     // signal underflowed fp32 on the way (collapse, not a dead mask)
};

constexpr LayerVerdict layer_verdict(bool fires_anywhere, bool negative_anywhere) {
  return fires_anywhere      ? LayerVerdict::fires
         : negative_anywhere ? LayerVerdict::dead_by_sign
                             : LayerVerdict::underflowed;
}

}  // namespace rs
