// reluscope_bench: GEMM and a training step through the C++ core, no Python.
// GFLOP/s and the percentage of the FMA peak at the same vector width and
// thread count, measured by this same run before the benchmarks (the peak of
// a shared CPU moves between runs; a ratio within one run does not).
//
//   reluscope_bench [--simd=portable|avx2|avx512] [Google Benchmark flags]
//
// Every case checks its answer before it is timed.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/worker_pool.hpp"
#include "train/train_step.hpp"

double peak_gflops_portable(int threads);
#if defined(RELUSCOPE_X86)
double peak_gflops_avx2(int threads);
double peak_gflops_avx512(int threads);
#endif

namespace {

double peak_gflops(const std::string& target, int threads) {
#if defined(RELUSCOPE_X86)
  if (target == "avx2") return peak_gflops_avx2(threads);
  if (target == "avx512") return peak_gflops_avx512(threads);
#endif
  return peak_gflops_portable(threads);
}

// "AMD EPYC (family 25, model 1)", from the first processor of /proc/cpuinfo.
std::string cpu_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  while (std::getline(cpuinfo, line) && !line.empty()) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name") name = value;
    if (key == "cpu family") family = value;
    if (key == "model") model = value;
  }
  return family.empty() ? name : name + " (family " + family + ", model " + model + ")";
}

std::vector<float> random_normal(std::size_t count, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(count);
  for (float& v : values) v = normal(rng);
  return values;
}

// Times the loop itself, so that the rate counters read as plain numbers
// (a Google Benchmark rate counter prints "123/s").
class RateTimer {
 public:
  explicit RateTimer(double peak) : peak_(peak), start_(std::chrono::steady_clock::now()) {}
  void report(benchmark::State& state, double flops_per_iteration) const {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double gflops = flops_per_iteration * state.iterations() / seconds / 1e9;
    state.counters["GFLOP/s"] = gflops;
    state.counters["peak%"] = 100.0 * gflops / peak_;
  }

 private:
  double peak_;
  std::chrono::steady_clock::time_point start_;
};

struct GemmCase {
  std::int64_t m, n, k;
  bool transpose_a, transpose_b;
  std::string name() const {
    return "gemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
           (transpose_a ? "_At" : "") + (transpose_b ? "_Bt" : "");
  }
};

void bench_gemm(benchmark::State& state, GemmCase s, int threads, double peak) {
  std::mt19937 rng(0);
  const std::vector<float> a = random_normal(static_cast<std::size_t>(s.m * s.k), 1.0f, rng);
  const std::vector<float> b = random_normal(static_cast<std::size_t>(s.k * s.n), 1.0f, rng);
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  // A stored (m, k) or, transposed, (k, m); B (k, n) or (n, k).
  const rs::GemmArgs g{s.m,
                       s.n,
                       s.k,
                       a.data(),
                       s.transpose_a ? 1 : s.k,
                       s.transpose_a ? s.m : 1,
                       b.data(),
                       s.transpose_b ? 1 : s.n,
                       s.transpose_b ? s.k : 1,
                       c.data(),
                       s.n};
  const rs::KernelSet& kernels = rs::kernels();
  kernels.gemm(g, threads);
  for (std::int64_t probe = 0; probe < 16; ++probe) {
    const std::int64_t i = probe * 7919 % s.m, j = probe * 104729 % s.n;
    double sum = 0.0, magnitude = 0.0;
    for (std::int64_t p = 0; p < s.k; ++p) {
      const double term = static_cast<double>(a[i * g.a_row_stride + p * g.a_col_stride]) *
                          b[p * g.b_row_stride + j * g.b_col_stride];
      sum += term;
      magnitude += std::fabs(term);
    }
    if (std::fabs(c[i * s.n + j] - sum) > 1e-5 * magnitude) {
      state.SkipWithError("wrong product: C differs from its double reference");
      return;
    }
  }
  RateTimer timer(peak);
  for (auto _ : state) {
    kernels.gemm(g, threads);
    benchmark::ClobberMemory();
  }
  timer.report(state, 2.0 * s.m * s.n * s.k);
}

// A net of bench/compare.py's step cases (NetCase): ReLU, He init, SGD (lr
// 1e-3, momentum 0.9), cross-entropy, with the Trainer's defaults: firing
// counts and death tracking on.
struct NetCase {
  const char* name;
  std::int64_t batch;
  std::vector<std::int64_t> sizes;  // features, hidden widths..., classes (10)
};

class Net {
 public:
  explicit Net(const NetCase& c) : batch_(c.batch), layers_(c.sizes.size() - 1) {
    const std::vector<std::int64_t>& sizes = c.sizes;
    const std::size_t n_layers = layers_.size();
    std::mt19937 rng(0);
    for (std::size_t i = 0; i < n_layers; ++i) {
      const std::int64_t fan_in = sizes[i], fan_out = sizes[i + 1];
      const bool hidden = i + 1 < n_layers;
      Layer& l = layers_[i];
      l.weight =
          random_normal(static_cast<std::size_t>(fan_in * fan_out), std::sqrt(2.0f / fan_in), rng);
      l.bias.assign(static_cast<std::size_t>(fan_out), 0.0f);
      l.weight_velocity.assign(l.weight.size(), 0.0f);
      l.bias_velocity.assign(l.bias.size(), 0.0f);
      l.firing_counts.assign(hidden ? l.bias.size() : 0, 0);
      // As reluscope.tracking does: step -1 and NaN until a unit's first firing.
      l.last_firing.assign(hidden ? l.bias.size() * rs::last_firing::kFields : 0, NAN);
      for (std::size_t u = 0; hidden && u < l.bias.size(); ++u)
        l.last_firing[u * rs::last_firing::kFields + rs::last_firing::step] = -1.0;
      rs::TrainLayer spec{l.weight.data(),
                          l.bias.data(),
                          fan_in,
                          fan_out,
                          hidden ? rs::Activation::relu : rs::Activation::identity,
                          0.0f,
                          {},
                          {},
                          {}};
      spec.weight_state.velocity = l.weight_velocity.data();
      spec.bias_state.velocity = l.bias_velocity.data();
      if (hidden) {
        spec.units.firing_counts = l.firing_counts.data();
        spec.units.last_firing = l.last_firing.data();
      }
      specs_.push_back(spec);
      flops_ += 6.0 * batch_ * fan_in * fan_out;
    }
    x_ = random_normal(static_cast<std::size_t>(batch_ * sizes[0]), 1.0f, rng);
    std::uniform_int_distribution<std::int64_t> label(0, sizes.back() - 1);
    labels_.resize(static_cast<std::size_t>(batch_));
    for (std::int64_t& y : labels_) y = label(rng);
  }

  std::vector<rs::TrainLayer> specs() const { return specs_; }
  double flops() const { return flops_; }
  rs::Batch batch() const { return {x_.data(), batch_, nullptr, labels_.data(), nullptr, false}; }

 private:
  struct Layer {
    std::vector<float> weight, bias, weight_velocity, bias_velocity;
    std::vector<std::int64_t> firing_counts;
    std::vector<double> last_firing;
  };
  std::int64_t batch_;
  std::vector<Layer> layers_;  // sized once: specs_ points into its vectors
  std::vector<rs::TrainLayer> specs_;
  std::vector<float> x_;
  std::vector<std::int64_t> labels_;
  double flops_ = 0.0;
};

void bench_train_step(benchmark::State& state, NetCase net_case, int threads, double peak) {
  Net net(net_case);
  rs::TrainStep step(net.specs(), rs::LossKind::cross_entropy);
  rs::StepSettings settings;
  settings.optimizer.kind = rs::OptimizerKind::sgd;
  settings.optimizer.lr = 1e-3f;
  settings.optimizer.momentum = 0.9f;
  const rs::Batch batch = net.batch();
  // The first step allocates the workspaces; it also checks the answer: a
  // finite loss near ln(10) for He-initialized weights and random labels.
  const rs::StepResult first = step.run(batch, settings, threads);
  if (first.status != rs::StepStatus::ok || !(first.loss > 0.5 && first.loss < 20.0)) {
    state.SkipWithError("the first training step failed or its loss is implausible");
    return;
  }
  RateTimer timer(peak);
  for (auto _ : state) {
    ++settings.step_number;
    ++settings.optimizer.update_number;
    const rs::StepResult r = step.run(batch, settings, threads);
    if (r.status != rs::StepStatus::ok) {
      state.SkipWithError("a training step did not complete");
      return;
    }
  }
  timer.report(state, net.flops());
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = rs::best_target();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--simd=", 7) == 0)
      target = argv[i] + 7;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  try {
    rs::select_target(target);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reluscope_bench: %s\n", e.what());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  const GemmCase gemms[] = {{256, 256, 256, false, false},    {512, 512, 512, false, false},
                            {1024, 1024, 1024, false, false}, {256, 1024, 784, false, false},
                            {1024, 1024, 256, true, false},   {256, 1024, 1024, false, true}};
  const NetCase nets[] = {
      {"tiny_batch32", 32, {64, 64, 64, 10}},
      {"medium_batch256", 256, {784, 1024, 1024, 1024, 10}},
      {"deep_narrow_batch256", 256, {100, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 10}}};
  benchmark::AddCustomContext("cpu", cpu_name());
  benchmark::AddCustomContext("simd_target", target);
  benchmark::AddCustomContext("idle_spin_us", std::to_string(rs::idle_spin_microseconds()));
  for (int threads : {1, 2}) {
    const double peak = peak_gflops(target, threads);
    char value[32];
    std::snprintf(value, sizeof(value), "%.1f", peak);
    benchmark::AddCustomContext(
        "peak_gflops_" + std::to_string(threads) + (threads == 1 ? "_thread" : "_threads"), value);
    const std::string suffix = "/threads:" + std::to_string(threads);
    for (const GemmCase& g : gemms)
      benchmark::RegisterBenchmark((g.name() + suffix).c_str(), bench_gemm, g, threads, peak)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    for (const NetCase& net : nets)
      benchmark::RegisterBenchmark(("train_step/" + std::string(net.name) + suffix).c_str(),
                                   bench_train_step, net, threads, peak)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
