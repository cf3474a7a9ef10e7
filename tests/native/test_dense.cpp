// The dense layer: the fused forward (pre = x @ weight + bias, out = act(pre),
// firing counts, max pre-activation, non-finite counts) and the backward
// (grad_pre, grad_weight, grad_bias, grad_x), against double loops.
//
// The statistics are checked against the kernel's own float32 pre-activations
// (a value within rounding of 0 may fire in float and not in double), and the
// pre-activations against the double reference.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kernel_test.hpp"

namespace rs::testing {
namespace {

constexpr float kSlope = 0.01f;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Layer {
  std::int64_t n_rows, fan_in, fan_out;
};

// Empty batch, no inputs (pre = bias), tiny, odd, past a register tile, big
// enough for two threads, and a first layer of an MNIST net.
const Layer kLayers[] = {{0, 3, 5},   {5, 0, 7},      {1, 1, 1},       {3, 17, 3},
                         {17, 3, 17}, {100, 101, 33}, {130, 140, 120}, {257, 784, 65}};

const Activation kActivations[] = {Activation::identity, Activation::relu, Activation::leaky_relu};

const char* name(Activation a) {
  switch (a) {
    case Activation::identity:
      return "identity";
    case Activation::relu:
      return "relu";
    case Activation::leaky_relu:
      return "leaky_relu";
  }
  return "?";
}

float activate(float s, Activation a) {
  if (a == Activation::identity) return s;
  if (a == Activation::relu) return s <= 0.0f ? 0.0f : s;
  return s > 0.0f ? s : kSlope * s;
}

float derivative(float s, Activation a) {
  if (a == Activation::identity || s > 0.0f) return 1.0f;
  return a == Activation::relu ? 0.0f : kSlope;
}

std::size_t size(std::int64_t rows, std::int64_t cols) {
  return static_cast<std::size_t>(rows * cols);
}

// Every element of pre against x @ weight + bias in double.
void expect_pre_matches(const Layer& l, const std::vector<float>& x,
                        const std::vector<float>& weight, const std::vector<float>& bias,
                        const std::vector<float>& pre) {
  int failures = 0;
  for (std::int64_t i = 0; i < l.n_rows; ++i)
    for (std::int64_t j = 0; j < l.fan_out; ++j) {
      double sum = bias[j], magnitude = std::fabs(bias[j]);
      for (std::int64_t p = 0; p < l.fan_in; ++p) {
        const double term = static_cast<double>(x[i * l.fan_in + p]) * weight[p * l.fan_out + j];
        sum += term;
        magnitude += std::fabs(term);
      }
      if (!close_to(pre[i * l.fan_out + j], sum, magnitude) && failures++ < 5)
        ADD_FAILURE() << "pre[" << i << ", " << j << "] = " << pre[i * l.fan_out + j]
                      << ", expected " << sum;
    }
  EXPECT_EQ(failures, 0);
}

class DenseForwardTest : public KernelTest {};

TEST_P(DenseForwardTest, PreActivationOutputAndStatistics) {
  for (const Layer& l : kLayers) {
    for (Activation act : kActivations) {
      SCOPED_TRACE(::testing::Message() << "n_rows=" << l.n_rows << " fan_in=" << l.fan_in
                                        << " fan_out=" << l.fan_out << " " << name(act));
      std::mt19937 rng(static_cast<unsigned>(l.n_rows * 31 + l.fan_in * 7 + l.fan_out));
      const std::vector<float> x = random_floats(size(l.n_rows, l.fan_in), rng);
      const std::vector<float> weight = random_floats(size(l.fan_in, l.fan_out), rng);
      const std::vector<float> bias = random_floats(size(1, l.fan_out), rng, -0.5f, 0.5f);
      std::vector<float> pre(size(l.n_rows, l.fan_out)), out(pre.size());
      // The statistics accumulate: start them away from their neutral values.
      std::vector<std::int64_t> counts(size(1, l.fan_out)), nonfinite(counts.size());
      std::vector<float> max_pre(counts.size());
      for (std::int64_t j = 0; j < l.fan_out; ++j) {
        counts[j] = j % 4;
        nonfinite[j] = j % 3;
        max_pre[j] = j % 2 ? -kInf : 0.25f;
      }
      const std::vector<std::int64_t> counts_before = counts, nonfinite_before = nonfinite;
      const std::vector<float> max_before = max_pre;
      const DenseForwardArgs d{
          l.n_rows,      l.fan_in,       l.fan_out,       x.data(), weight.data(),
          bias.data(),   pre.data(),     out.data(),      act,      kSlope,
          counts.data(), max_pre.data(), nonfinite.data()};
      kernels().dense_forward(d, threads());

      expect_pre_matches(l, x, weight, bias, pre);
      for (std::size_t i = 0; i < pre.size(); ++i)
        ASSERT_EQ(out[i], activate(pre[i], act)) << "out at flat index " << i;
      for (std::int64_t j = 0; j < l.fan_out; ++j) {
        std::int64_t fired = 0;
        float highest = max_before[j];
        for (std::int64_t i = 0; i < l.n_rows; ++i) {
          fired += pre[i * l.fan_out + j] > 0.0f;
          highest = std::max(highest, pre[i * l.fan_out + j]);
        }
        EXPECT_EQ(counts[j], counts_before[j] + fired) << "firing count of unit " << j;
        EXPECT_EQ(max_pre[j], highest) << "max pre-activation of unit " << j;
        EXPECT_EQ(nonfinite[j], nonfinite_before[j]) << "non-finite count of unit " << j;
      }
    }
  }
}

TEST_P(DenseForwardTest, WithoutStatisticsAndInPlace) {
  for (const Layer& l : kLayers) {
    SCOPED_TRACE(::testing::Message()
                 << "n_rows=" << l.n_rows << " fan_in=" << l.fan_in << " fan_out=" << l.fan_out);
    std::mt19937 rng(static_cast<unsigned>(l.n_rows + l.fan_in + l.fan_out));
    const std::vector<float> x = random_floats(size(l.n_rows, l.fan_in), rng);
    const std::vector<float> weight = random_floats(size(l.fan_in, l.fan_out), rng);
    const std::vector<float> bias = random_floats(size(1, l.fan_out), rng);
    std::vector<float> pre(size(l.n_rows, l.fan_out)), out(pre.size());
    DenseForwardArgs d{l.n_rows,   l.fan_in,      l.fan_out,
                       x.data(),   weight.data(), bias.data(),
                       pre.data(), out.data(),    Activation::leaky_relu,
                       kSlope,     nullptr,       nullptr,
                       nullptr};
    kernels().dense_forward(d, threads());
    expect_pre_matches(l, x, weight, bias, pre);
    // out may equal pre: the activation then overwrites the pre-activation.
    std::vector<float> in_place(pre.size());
    d.pre = d.out = in_place.data();
    kernels().dense_forward(d, threads());
    EXPECT_EQ(in_place, out);
  }
}

TEST_P(DenseForwardTest, CountsNonFinitePreActivations) {
  for (const Layer& l : {Layer{37, 19, 21}, Layer{130, 140, 120}}) {
    SCOPED_TRACE(::testing::Message() << "n_rows=" << l.n_rows << " fan_out=" << l.fan_out);
    std::mt19937 rng(11);
    std::vector<float> x = random_floats(size(l.n_rows, l.fan_in), rng);
    const std::vector<float> weight = random_floats(size(l.fan_in, l.fan_out), rng);
    std::vector<float> bias = random_floats(size(1, l.fan_out), rng);
    // Row 2 is NaN throughout; unit 3 (and the last unit, in the edge tile) has
    // an infinite bias, so it is +Inf on every other row.
    const std::int64_t nan_row = 2, inf_units[] = {3, l.fan_out - 1};
    for (std::int64_t p = 0; p < l.fan_in; ++p)
      x[nan_row * l.fan_in + p] = std::numeric_limits<float>::quiet_NaN();
    for (std::int64_t j : inf_units) bias[j] = kInf;
    std::vector<float> pre(size(l.n_rows, l.fan_out)), out(pre.size());
    std::vector<std::int64_t> counts(size(1, l.fan_out)), nonfinite(counts.size());
    const DenseForwardArgs d{l.n_rows,         l.fan_in,    l.fan_out,     x.data(),
                             weight.data(),    bias.data(), pre.data(),    out.data(),
                             Activation::relu, 0.0f,        counts.data(), nullptr,
                             nonfinite.data()};
    kernels().dense_forward(d, threads());
    for (std::int64_t j = 0; j < l.fan_out; ++j) {
      const bool infinite = j == inf_units[0] || j == inf_units[1];
      EXPECT_EQ(nonfinite[j], infinite ? l.n_rows : 1) << "unit " << j;
      // NaN does not fire; +Inf does; ReLU passes NaN through.
      if (infinite) {
        EXPECT_EQ(counts[j], l.n_rows - 1) << "unit " << j;
      }
      EXPECT_TRUE(std::isnan(out[nan_row * l.fan_out + j])) << "unit " << j;
    }
  }
}

class DenseBackwardTest : public KernelTest {};

TEST_P(DenseBackwardTest, GradientsMatchDoubleReference) {
  for (const Layer& l : kLayers) {
    for (Activation act : kActivations) {
      for (bool with_grad_x : {true, false}) {
        SCOPED_TRACE(::testing::Message()
                     << "n_rows=" << l.n_rows << " fan_in=" << l.fan_in << " fan_out=" << l.fan_out
                     << " " << name(act) << (with_grad_x ? "" : " no grad_x"));
        std::mt19937 rng(static_cast<unsigned>(l.n_rows * 3 + l.fan_in * 5 + l.fan_out));
        const std::vector<float> x = random_floats(size(l.n_rows, l.fan_in), rng);
        const std::vector<float> weight = random_floats(size(l.fan_in, l.fan_out), rng);
        std::vector<float> pre = random_floats(size(l.n_rows, l.fan_out), rng);
        // A unit at exactly 0 does not fire: ReLU's derivative there is 0.
        for (std::size_t i = 0; i < pre.size(); i += 5) pre[i] = 0.0f;
        const std::vector<float> grad_out = random_floats(pre.size(), rng);
        const float kUnset = 777.0f;
        std::vector<float> grad_pre(pre.size(), kUnset), grad_weight(weight.size(), kUnset),
            grad_bias(size(1, l.fan_out), kUnset), grad_x(x.size(), kUnset);
        const DenseBackwardArgs d{l.n_rows,
                                  l.fan_in,
                                  l.fan_out,
                                  x.data(),
                                  weight.data(),
                                  pre.data(),
                                  grad_out.data(),
                                  grad_pre.data(),
                                  grad_weight.data(),
                                  grad_bias.data(),
                                  with_grad_x ? grad_x.data() : nullptr,
                                  act,
                                  kSlope};
        kernels().dense_backward(d, threads());

        for (std::size_t i = 0; i < pre.size(); ++i)
          ASSERT_EQ(grad_pre[i], grad_out[i] * derivative(pre[i], act)) << "grad_pre at " << i;
        int failures = 0;
        for (std::int64_t p = 0; p < l.fan_in; ++p)
          for (std::int64_t j = 0; j < l.fan_out; ++j) {
            double sum = 0.0, magnitude = 0.0;
            for (std::int64_t i = 0; i < l.n_rows; ++i) {
              const double term =
                  static_cast<double>(x[i * l.fan_in + p]) * grad_pre[i * l.fan_out + j];
              sum += term;
              magnitude += std::fabs(term);
            }
            if (!close_to(grad_weight[p * l.fan_out + j], sum, magnitude) && failures++ < 5)
              ADD_FAILURE() << "grad_weight[" << p << ", " << j << "]";
          }
        for (std::int64_t j = 0; j < l.fan_out; ++j) {
          double sum = 0.0, magnitude = 0.0;
          for (std::int64_t i = 0; i < l.n_rows; ++i) {
            sum += grad_pre[i * l.fan_out + j];
            magnitude += std::fabs(grad_pre[i * l.fan_out + j]);
          }
          if (!close_to(grad_bias[j], sum, magnitude) && failures++ < 5)
            ADD_FAILURE() << "grad_bias[" << j << "] = " << grad_bias[j] << ", expected " << sum;
        }
        for (std::int64_t i = 0; i < l.n_rows; ++i)
          for (std::int64_t p = 0; p < l.fan_in; ++p) {
            if (!with_grad_x) {
              if (grad_x[i * l.fan_in + p] != kUnset && failures++ < 5)
                ADD_FAILURE() << "grad_x written though not asked for";
              continue;
            }
            double sum = 0.0, magnitude = 0.0;
            for (std::int64_t j = 0; j < l.fan_out; ++j) {
              const double term =
                  static_cast<double>(grad_pre[i * l.fan_out + j]) * weight[p * l.fan_out + j];
              sum += term;
              magnitude += std::fabs(term);
            }
            if (!close_to(grad_x[i * l.fan_in + p], sum, magnitude) && failures++ < 5)
              ADD_FAILURE() << "grad_x[" << i << ", " << p << "]";
          }
        EXPECT_EQ(failures, 0);
      }
    }
  }
}

// A layer's backward inputs, random from `seed`, and the gradients of one
// leaky-ReLU backward run. backward_args points the kernel at both; a test may
// then make it read grad_out from one of the gradient buffers instead.
struct BackwardInputs {
  Layer l;
  std::vector<float> x, weight, pre, grad_out;
  BackwardInputs(Layer layer, unsigned seed) : l(layer) {
    std::mt19937 rng(seed);
    x = random_floats(size(l.n_rows, l.fan_in), rng);
    weight = random_floats(size(l.fan_in, l.fan_out), rng);
    pre = random_floats(size(l.n_rows, l.fan_out), rng);
    grad_out = random_floats(pre.size(), rng);
  }
};
struct BackwardGrads {
  std::vector<float> grad_pre, grad_weight, grad_bias, grad_x;
  explicit BackwardGrads(const BackwardInputs& in)
      : grad_pre(in.pre.size()),
        grad_weight(in.weight.size()),
        grad_bias(size(1, in.l.fan_out)),
        grad_x(in.x.size()) {}
};
DenseBackwardArgs backward_args(const BackwardInputs& in, BackwardGrads& g) {
  return {in.l.n_rows,
          in.l.fan_in,
          in.l.fan_out,
          in.x.data(),
          in.weight.data(),
          in.pre.data(),
          in.grad_out.data(),
          g.grad_pre.data(),
          g.grad_weight.data(),
          g.grad_bias.data(),
          g.grad_x.data(),
          Activation::leaky_relu,
          kSlope};
}
void expect_same_bits(const BackwardGrads& expected, const BackwardGrads& got,
                      const std::string& where) {
  EXPECT_EQ(expected.grad_pre, got.grad_pre) << where;
  EXPECT_EQ(expected.grad_weight, got.grad_weight) << where;
  EXPECT_EQ(expected.grad_bias, got.grad_bias) << where;
  EXPECT_EQ(expected.grad_x, got.grad_x) << where;
}

// The backward with grad_out read from, and `written` (grad_pre or grad_x)
// written to, one buffer must give the bits of separate arrays. Several calls:
// the first may find the worker not yet started, and run alone.
void expect_in_place_same_bits(const KernelSet& kernels, int threads, const BackwardInputs& in,
                               std::vector<float> BackwardGrads::* written) {
  BackwardGrads apart(in);
  kernels.dense_backward(backward_args(in, apart), threads);
  for (int call = 0; call < 5; ++call) {
    BackwardGrads shared(in);
    shared.*written = in.grad_out;
    DenseBackwardArgs d = backward_args(in, shared);
    d.grad_out = (shared.*written).data();
    kernels.dense_backward(d, threads);
    expect_same_bits(apart, shared, "call " + std::to_string(call));
  }
}

// Leaky ReLU: a grad_pre formed twice (read back where grad_out was) would be
// off by a factor of the slope wherever pre < 0. 1000 rows: the weight
// gradient reads grad_out in four blocks of rows, the last long after grad_x
// could have started, had the two products run side by side.
TEST_P(DenseBackwardTest, GradPreInPlaceOfGradOut) {
  expect_in_place_same_bits(kernels(), threads(), BackwardInputs({1000, 140, 120}, 3),
                            &BackwardGrads::grad_pre);
}

// grad_x in place of grad_out (fan_in == fan_out): run in turn, grad_x is
// written after grad_weight has read grad_out. Side by side, grad_weight would
// read rows of grad_out already overwritten, so the products must run in turn.
TEST_P(DenseBackwardTest, GradXInPlaceOfGradOut) {
  expect_in_place_same_bits(kernels(), threads(), BackwardInputs({1000, 120, 120}, 5),
                            &BackwardGrads::grad_x);
}

// Threads split output tiles and batch reductions combine in a fixed order:
// the thread count does not change a bit of the result. On 2 threads grad_weight
// and grad_x are computed side by side, one on each thread; on 3 and 4 the first
// layer's in turn, each split among all the threads. grad_pre @ weight.T reads
// its A (grad_pre) in place in the first layer; it packs it in the second (more
// than 256K floats), as x.T @ grad_pre does (more than 128 rows), so both
// products use their workspaces at once; and in the third (rows 4 KiB apart).
// Every product's inner dimension crosses KC.
TEST_P(DenseBackwardTest, SameBitsOnOneAndTwoThreads) {
  // In 301 x 128 -> 75, half of grad_pre (11,287 of 22,575 elements) is not a
  // whole number of cache lines: the two threads' parts meet at 11,280.
  for (const Layer& l :
       {Layer{300, 140, 120}, Layer{600, 160, 512}, Layer{250, 96, 1024}, Layer{301, 128, 75}}) {
    const BackwardInputs in(l, 4);
    BackwardGrads one(in);
    kernels().dense_backward(backward_args(in, one), 1);
    for (int n_threads : {threads(), 3, 4}) {
      BackwardGrads many(in);
      kernels().dense_backward(backward_args(in, many), n_threads);
      expect_same_bits(one, many,
                       std::to_string(l.n_rows) + " x " + std::to_string(l.fan_in) + " -> " +
                           std::to_string(l.fan_out) + ", " + std::to_string(n_threads) +
                           " threads");
    }
  }
}

// A stack of layers laid out as the training step lays it out: each layer's
// grad_out is what the layer after it wrote as grad_x, either in two buffers
// used in turn (`ping_pong`, the step's way) or in one buffer per layer.
struct LayerStack {
  std::int64_t n_rows;
  std::vector<std::int64_t> widths;  // inputs, then each layer's outputs
  std::vector<Activation> activations;
  bool ping_pong;
  std::vector<std::vector<float>> x, weight, pre;
  std::vector<std::vector<float>> grad_pre, grad_weight, grad_bias, grad_x;
  std::vector<float> top_grad, buffers[2];
  bool first_grad_x = false;  // the first layer's grad_x asked for too

  LayerStack(std::int64_t rows, std::vector<std::int64_t> sizes, std::vector<Activation> acts,
             bool two_buffers, unsigned seed)
      : n_rows(rows),
        widths(std::move(sizes)),
        activations(std::move(acts)),
        ping_pong(two_buffers) {
    std::mt19937 rng(seed);
    const std::size_t count = activations.size();
    std::int64_t widest = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const std::int64_t in = widths[i], out = widths[i + 1];
      widest = std::max(widest, in);
      x.push_back(random_floats(size(n_rows, in), rng));
      weight.push_back(random_floats(size(in, out), rng));
      pre.push_back(random_floats(size(n_rows, out), rng));
      grad_pre.emplace_back(size(n_rows, out));
      grad_weight.emplace_back(size(in, out));
      grad_bias.emplace_back(size(1, out));
      grad_x.emplace_back(ping_pong ? 0 : size(n_rows, in));
    }
    top_grad = random_floats(size(n_rows, widths.back()), rng);
    for (std::vector<float>& b : buffers) b.assign(size(n_rows, widest), 0.0f);
  }

  std::vector<DenseBackwardArgs> args() {
    std::vector<DenseBackwardArgs> layers(activations.size());
    const float* grad_out = top_grad.data();
    for (std::size_t i = layers.size(); i-- > 0;) {
      float* into = ping_pong ? buffers[i % 2].data() : grad_x[i].data();
      layers[i] = {n_rows,
                   widths[i],
                   widths[i + 1],
                   x[i].data(),
                   weight[i].data(),
                   pre[i].data(),
                   grad_out,
                   grad_pre[i].data(),
                   grad_weight[i].data(),
                   grad_bias[i].data(),
                   i == 0 && !first_grad_x ? nullptr : into,
                   activations[i],
                   kSlope};
      grad_out = into;
    }
    return layers;
  }
};

void expect_same_stack_bits(const LayerStack& expected, const LayerStack& got,
                            const std::string& where) {
  for (std::size_t i = 0; i < expected.activations.size(); ++i) {
    EXPECT_EQ(expected.grad_pre[i], got.grad_pre[i]) << where << ", layer " << i;
    EXPECT_EQ(expected.grad_weight[i], got.grad_weight[i]) << where << ", layer " << i;
    EXPECT_EQ(expected.grad_bias[i], got.grad_bias[i]) << where << ", layer " << i;
    EXPECT_EQ(expected.grad_x[i], got.grad_x[i]) << where << ", layer " << i;
  }
  EXPECT_EQ(expected.buffers[0], got.buffers[0]) << where;
  EXPECT_EQ(expected.buffers[1], got.buffers[1]) << where;
}

// A stack for the stacked kernels' tests: its rows, its widths (the inputs, then
// each layer's outputs) and each layer's activation.
struct StackCase {
  std::int64_t n_rows;
  std::vector<std::int64_t> widths;
  std::vector<Activation> activations;
};
constexpr Activation relu = Activation::relu, leaky = Activation::leaky_relu,
                     identity = Activation::identity;
// The deep-narrow net's shape, shortened: what the training step pipelines.
const StackCase kDeepNarrowStack = {
    256, {100, 128, 128, 128, 128, 10}, {relu, relu, relu, relu, identity}};

// dense_backward_layers gives the bits of dense_backward called layer by layer
// on one thread, on any thread count: pipelined on 2 threads (a deep-narrow
// stack, whose first layer's middle third of 3 panels leaves one of its 4
// pieces empty; a first layer of 1000 outputs, pieces of 5 and 6 panels and a
// ragged last panel; one of 17 outputs, whose shared-out weight gradient is one
// panel and one column; one of 3 outputs, less than a panel), layer by layer
// where the pipeline does not pay (37 rows) or on 3 and 4 threads for layers
// that split among them (600 x 160 -> 512). Both buffer layouts.
TEST_P(DenseBackwardTest, StackSameBitsAsLayersInTurn) {
  const std::vector<StackCase> cases = {
      kDeepNarrowStack,
      {64, {40, 1000, 64, 10}, {relu, relu, identity}},
      {301, {33, 17, 200, 150, 7}, {leaky, relu, leaky, identity}},
      {256, {50, 3, 200, 200, 1}, {relu, leaky, relu, identity}},
      {37, {3, 17, 1, 5}, {relu, leaky, identity}},
      {600, {160, 512, 140, 10}, {relu, relu, identity}},
  };
  unsigned seed = 11;
  for (const StackCase& c : cases) {
    for (bool ping_pong : {true, false}) {
      LayerStack in_turn(c.n_rows, c.widths, c.activations, ping_pong, ++seed);
      const std::vector<DenseBackwardArgs> layers = in_turn.args();
      for (std::size_t i = layers.size(); i-- > 0;) kernels().dense_backward(layers[i], 1);
      for (int n_threads : {threads(), 3, 4}) {
        LayerStack stacked(c.n_rows, c.widths, c.activations, ping_pong, seed);
        const std::vector<DenseBackwardArgs> args = stacked.args();
        kernels().dense_backward_layers(args.data(), static_cast<std::int64_t>(args.size()),
                                        n_threads);
        expect_same_stack_bits(in_turn, stacked,
                               std::to_string(c.n_rows) + " rows, " +
                                   std::to_string(c.widths.size() - 1) + " layers, " +
                                   (ping_pong ? "two buffers, " : "a buffer per layer, ") +
                                   std::to_string(n_threads) + " threads");
      }
    }
  }
}

// The pipeline computes no grad_x for the first layer: a stack that asks for
// one runs layer by layer, and gets it.
TEST_P(DenseBackwardTest, StackWithTheFirstLayersGradXRunsInTurn) {
  const std::vector<Activation> acts = {Activation::relu, Activation::relu, Activation::identity};
  for (bool ping_pong : {true, false}) {
    LayerStack in_turn(256, {100, 128, 128, 10}, acts, ping_pong, 9);
    LayerStack stacked(256, {100, 128, 128, 10}, acts, ping_pong, 9);
    in_turn.first_grad_x = stacked.first_grad_x = true;
    const std::vector<DenseBackwardArgs> expected = in_turn.args(), args = stacked.args();
    for (std::size_t i = expected.size(); i-- > 0;) kernels().dense_backward(expected[i], 1);
    kernels().dense_backward_layers(args.data(), static_cast<std::int64_t>(args.size()), threads());
    expect_same_stack_bits(in_turn, stacked, ping_pong ? "two buffers" : "a buffer per layer");
    const float* first = ping_pong ? stacked.buffers[0].data() : stacked.grad_x[0].data();
    EXPECT_TRUE(std::any_of(first, first + size(256, 100), [](float v) { return v != 0.0f; }))
        << "the first layer's grad_x was not written";
  }
}

// Layers 0 and 2 given one weight-gradient array: in turn, layer 0's gradient
// is written last and stays; pipelined, both threads would write it at once.
// The stack runs layer by layer.
TEST_P(DenseBackwardTest, StackSharingAWeightGradientRunsInTurn) {
  const std::vector<Activation> acts = {Activation::relu, Activation::relu, Activation::relu,
                                        Activation::identity};
  LayerStack in_turn(256, {128, 128, 128, 128, 10}, acts, true, 6);
  std::vector<DenseBackwardArgs> expected = in_turn.args();
  expected[2].grad_weight = in_turn.grad_weight[0].data();
  for (std::size_t i = expected.size(); i-- > 0;) kernels().dense_backward(expected[i], 1);
  for (int call = 0; call < 20; ++call) {
    LayerStack stacked(256, {128, 128, 128, 128, 10}, acts, true, 6);
    std::vector<DenseBackwardArgs> args = stacked.args();
    args[2].grad_weight = stacked.grad_weight[0].data();
    kernels().dense_backward_layers(args.data(), static_cast<std::int64_t>(args.size()), threads());
    expect_same_stack_bits(in_turn, stacked, "call " + std::to_string(call));
  }
}

// A layer whose grad_pre is its grad_out (allowed, see GradPreInPlaceOfGradOut)
// cannot be handed from one thread to the other while the chain goes on: the
// stack runs layer by layer, with the bits of the calls in turn.
TEST_P(DenseBackwardTest, StackWithGradPreInPlaceRunsInTurn) {
  const std::vector<Activation> acts = {Activation::relu, Activation::leaky_relu, Activation::relu,
                                        Activation::identity};
  LayerStack in_turn(256, {100, 128, 128, 128, 10}, acts, true, 5);
  std::vector<DenseBackwardArgs> expected = in_turn.args();
  // Layer 2 forms grad_pre over its grad_out (layer 3's grad_x), in the buffer
  // that layer 1's grad_x overwrites next: pipelined, the weight thread could
  // still be reading it as layer 2's grad_pre.
  expected[2].grad_pre = const_cast<float*>(expected[2].grad_out);
  for (std::size_t i = expected.size(); i-- > 0;) kernels().dense_backward(expected[i], 1);
  for (int call = 0; call < 20; ++call) {
    LayerStack stacked(256, {100, 128, 128, 128, 10}, acts, true, 5);
    std::vector<DenseBackwardArgs> args = stacked.args();
    args[2].grad_pre = const_cast<float*>(args[2].grad_out);
    kernels().dense_backward_layers(args.data(), static_cast<std::int64_t>(args.size()), threads());
    expect_same_stack_bits(in_turn, stacked, "call " + std::to_string(call));
  }
}

// A stack of layers for the forward, laid out as the training step lays it
// out: each layer reads the out of the one before, the last layer's out is its
// pre (identity), and the hidden layers keep firing statistics, started away
// from their neutral values.
struct ForwardStack {
  std::int64_t n_rows;
  std::vector<std::int64_t> widths;
  std::vector<Activation> activations;
  std::vector<float> input;
  std::vector<std::vector<float>> weight, bias, pre, out;
  std::vector<std::vector<std::int64_t>> counts, nonfinite;
  std::vector<std::vector<float>> max_pre;

  ForwardStack(std::int64_t rows, std::vector<std::int64_t> sizes, std::vector<Activation> acts,
               unsigned seed)
      : n_rows(rows), widths(std::move(sizes)), activations(std::move(acts)) {
    std::mt19937 rng(seed);
    input = random_floats(size(n_rows, widths[0]), rng);
    // Rows in the second thread's half that overflow or hold NaN: counted.
    input[size(n_rows - 1, widths[0])] = kInf;
    input[size(n_rows - 2, widths[0]) + 1] = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t i = 0; i < activations.size(); ++i) {
      const std::int64_t in = widths[i], outs = widths[i + 1];
      weight.push_back(random_floats(size(in, outs), rng));
      bias.push_back(random_floats(size(1, outs), rng, -0.5f, 0.5f));
      pre.emplace_back(size(n_rows, outs));
      out.emplace_back(size(n_rows, outs));
      counts.emplace_back(size(1, outs), 3);
      nonfinite.emplace_back(size(1, outs), 1);
      max_pre.emplace_back(size(1, outs), 0.125f);
    }
  }

  std::vector<DenseForwardArgs> args() {
    std::vector<DenseForwardArgs> layers;
    const float* x = input.data();
    for (std::size_t i = 0; i < activations.size(); ++i) {
      const bool last = i + 1 == activations.size();
      float* into = last ? pre[i].data() : out[i].data();
      layers.push_back({n_rows, widths[i], widths[i + 1], x, weight[i].data(), bias[i].data(),
                        pre[i].data(), into, activations[i], kSlope,
                        last ? nullptr : counts[i].data(), last ? nullptr : max_pre[i].data(),
                        last ? nullptr : nonfinite[i].data()});
      x = into;
    }
    return layers;
  }
};

void expect_same_forward_bits(const ForwardStack& expected, const ForwardStack& got,
                              const std::string& where) {
  for (std::size_t i = 0; i < expected.activations.size(); ++i) {
    // memcmp-like: NaN rows compare by bits, not by value.
    EXPECT_EQ(0, std::memcmp(expected.pre[i].data(), got.pre[i].data(),
                             expected.pre[i].size() * sizeof(float)))
        << where << ", pre of layer " << i;
    EXPECT_EQ(0, std::memcmp(expected.out[i].data(), got.out[i].data(),
                             expected.out[i].size() * sizeof(float)))
        << where << ", out of layer " << i;
    EXPECT_EQ(expected.counts[i], got.counts[i]) << where << ", layer " << i;
    EXPECT_EQ(expected.nonfinite[i], got.nonfinite[i]) << where << ", layer " << i;
    EXPECT_EQ(expected.max_pre[i], got.max_pre[i]) << where << ", layer " << i;
  }
}

// dense_forward_layers gives the bits of dense_forward called layer by layer
// on one thread, statistics included, on any thread count: rows split between
// 2 threads (a deep-narrow stack; 301 rows, split off a multiple of the
// micro-tile's rows), layer by layer where a layer has more outputs than rows
// (256 x 784 -> 1024) or the stack is too small for two threads (37 rows).
TEST_P(DenseForwardTest, StackSameBitsAsLayersInTurn) {
  const std::vector<StackCase> cases = {
      kDeepNarrowStack,
      {301, {120, 100, 300, 17, 1}, {leaky, relu, leaky, identity}},
      // 600 x 500: A packed whole (more than 256K floats), read in place halved.
      {600, {500, 300, 300, 10}, {relu, relu, identity}},
      {256, {784, 1024, 10}, {relu, identity}},
      {37, {3, 17, 1, 5}, {relu, leaky, identity}},
  };
  unsigned seed = 7;
  for (const StackCase& c : cases) {
    ForwardStack in_turn(c.n_rows, c.widths, c.activations, ++seed);
    for (const DenseForwardArgs& d : in_turn.args()) kernels().dense_forward(d, 1);
    for (int n_threads : {threads(), 3, 4}) {
      ForwardStack stacked(c.n_rows, c.widths, c.activations, seed);
      const std::vector<DenseForwardArgs> args = stacked.args();
      kernels().dense_forward_layers(args.data(), static_cast<std::int64_t>(args.size()),
                                     n_threads);
      expect_same_forward_bits(in_turn, stacked,
                               std::to_string(c.n_rows) + " rows, " +
                                   std::to_string(c.widths.size() - 1) + " layers, " +
                                   std::to_string(n_threads) + " threads");
    }
  }
}

// Layer 1 reads layer 0's 128-wide output as 256 rows of 64 floats (its
// first half): in turn, all of it was written first; with the rows split, the
// second thread would read rows the first is writing. The stack runs layer by
// layer.
TEST_P(DenseForwardTest, StackReadingAtAnotherWidthRunsInTurn) {
  const std::vector<Activation> acts = {Activation::relu, Activation::relu, Activation::identity};
  ForwardStack in_turn(256, {100, 128, 64, 10}, acts, 4);
  std::vector<DenseForwardArgs> expected = in_turn.args();
  expected[1].fan_in = 64;  // the first 64 x 64 of its weights
  for (const DenseForwardArgs& d : expected) kernels().dense_forward(d, 1);
  for (int call = 0; call < 20; ++call) {
    ForwardStack stacked(256, {100, 128, 64, 10}, acts, 4);
    std::vector<DenseForwardArgs> args = stacked.args();
    args[1].fan_in = 64;
    kernels().dense_forward_layers(args.data(), static_cast<std::int64_t>(args.size()), threads());
    expect_same_forward_bits(in_turn, stacked, "call " + std::to_string(call));
  }
}

// A layer that writes its output over the stack's input, 64 floats a row read
// as 128: in turn the input is read before it is overwritten; with the rows
// split, the first thread would overwrite rows of the input the second has not
// read yet. The stack runs layer by layer, with the bits of the calls in turn.
TEST_P(DenseForwardTest, StackWritingOverItsInputRunsInTurn) {
  const std::vector<Activation> acts = {Activation::relu, Activation::relu, Activation::identity};
  ForwardStack in_turn(256, {64, 128, 128, 10}, acts, 3);
  in_turn.input.resize(size(256, 128));
  std::vector<DenseForwardArgs> expected = in_turn.args();
  expected[1].out = in_turn.input.data();
  expected[2].x = in_turn.input.data();
  for (const DenseForwardArgs& d : expected) kernels().dense_forward(d, 1);
  for (int call = 0; call < 20; ++call) {
    ForwardStack stacked(256, {64, 128, 128, 10}, acts, 3);
    stacked.input.resize(size(256, 128));
    std::vector<DenseForwardArgs> args = stacked.args();
    args[1].out = stacked.input.data();
    args[2].x = stacked.input.data();
    kernels().dense_forward_layers(args.data(), static_cast<std::int64_t>(args.size()), threads());
    expect_same_forward_bits(in_turn, stacked, "call " + std::to_string(call));
    EXPECT_EQ(0, std::memcmp(in_turn.input.data(), stacked.input.data(),
                             in_turn.input.size() * sizeof(float)))
        << "call " << call;
  }
}

RS_KERNEL_TEST_SUITE(DenseForwardTest);
RS_KERNEL_TEST_SUITE(DenseBackwardTest);

}  // namespace
}  // namespace rs::testing
