// reluscope._core: one line per area.
#include "bindings/pybind.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "reluscope's C++ kernels (private; use the reluscope package)";
  rs::bind_runtime(m);
  rs::bind_cpu_profiles(m);
  rs::bind_dense(m);
  rs::bind_loss(m);
  rs::bind_optim(m);
  rs::bind_train(m);
  rs::bind_experiments(m);
  rs::bind_stats(m);
}
