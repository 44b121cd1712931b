// Conv2d through oneDNN's convolution primitives (oneDNN 2.6: op desc -> primitive desc ->
// primitive).
//
// Per input shape the layer builds, once: the forward (forward_training), backward-data and
// backward-weights primitives; reorders of the user weights (PyTorch's oihw, or goihw with
// groups: the same bytes) into the format each primitive chose (format_tag::any lets oneDNN
// pick the blocked format its fastest kernel wants); and an accumulating reorder that adds
// oneDNN's diff_weights (written "=") into weight_grad ("+=", the layer contract) through a sum
// post-op. Activations stay plain (nchw / nhwc) so that neighbouring layers need no reorder.
// All primitives share one user-managed scratchpad, so a step allocates nothing inside oneDNN.
#include "bnorm/layers/conv2d.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "layers/onednn_context.hpp"

namespace bnorm {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// The user's weights in one primitive's preferred format: `converted` is the user memory
// itself when the formats agree (no reorder), otherwise a buffer filled by `reorder`.
struct WeightsFor {
  bool needs_reorder = false;
  memory converted;
  dnnl::reorder reorder;

  void prepare(const memory::desc& user_md, const memory::desc& wanted_md) {
    needs_reorder = !(user_md == wanted_md);
    if (!needs_reorder) return;
    converted = memory(wanted_md, onednn::cpu_engine());
    reorder = dnnl::reorder(dnnl::reorder::primitive_desc(onednn::cpu_engine(), user_md,
                                                          onednn::cpu_engine(), wanted_md));
  }
  // Converts the user weights `user` (when needed) and returns what the primitive reads.
  memory convert(memory& user, dnnl::stream& stream) {
    if (!needs_reorder) return user;
    reorder.execute(stream, user, converted);
    return converted;
  }
  // What the last convert() returned, without converting again.
  memory last(memory& user) const { return needs_reorder ? converted : user; }
};

}  // namespace

struct Conv2d::Primitives {
  Shape input;  // the input shape these were built for
  memory::desc src_md, dst_md, user_weights_md, bias_md;
  dnnl::convolution_forward::primitive_desc forward_pd;
  dnnl::convolution_backward_data::primitive_desc backward_data_pd;
  dnnl::convolution_backward_weights::primitive_desc backward_weights_pd;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
  WeightsFor forward_weights, backward_data_weights;
  bool backward_data_reuses_forward_weights = false;
  memory diff_weights;                  // backward_weights writes here, in its own format
  dnnl::reorder add_diff_weights;       // weight_grad += diff_weights (sum post-op)
  memory diff_bias;                     // (C_out), written by backward_weights
  memory scratchpad_buffer;             // shared by the three primitives
  memory forward_scratchpad, backward_data_scratchpad, backward_weights_scratchpad;
};

Conv2d::Conv2d(const Conv2dOptions& options) : options_(options) {
  const auto& o = options;
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("conv: " + why + " (in_channels=" + std::to_string(o.in_channels) +
                                ", out_channels=" + std::to_string(o.out_channels) +
                                ", kernel_size=" + std::to_string(o.kernel_size) +
                                ", stride=" + std::to_string(o.stride) + ", padding=" +
                                std::to_string(o.padding) + ", dilation=" + std::to_string(o.dilation) +
                                ", groups=" + std::to_string(o.groups) + ")");
  };
  if (o.in_channels < 1 || o.out_channels < 1) fail("in_channels and out_channels must be >= 1");
  if (o.kernel_size < 1) fail("kernel_size must be >= 1");
  if (o.stride < 1) fail("stride must be >= 1");
  if (o.dilation < 1) fail("dilation must be >= 1");
  if (o.padding < 0) fail("padding must be >= 0");
  if (o.groups < 1) fail("groups must be >= 1");
  if (o.in_channels % o.groups != 0 || o.out_channels % o.groups != 0)
    fail("groups must divide in_channels and out_channels");
  const Shape w{o.out_channels, o.in_channels / o.groups, o.kernel_size, o.kernel_size};
  weight_ = Tensor::zeros(w);
  weight_grad_ = Tensor::zeros(w);
  if (o.bias) {
    bias_ = Tensor::zeros({o.out_channels});
    bias_grad_ = Tensor::zeros({o.out_channels});
  }
}

Conv2d::~Conv2d() = default;

std::string Conv2d::describe() const {
  const auto& o = options_;
  return "conv(" + std::to_string(o.in_channels) + " -> " + std::to_string(o.out_channels) +
         ", kernel=" + std::to_string(o.kernel_size) + ", stride=" + std::to_string(o.stride) +
         ", padding=" + std::to_string(o.padding) + ", dilation=" + std::to_string(o.dilation) +
         ", groups=" + std::to_string(o.groups) + (o.bias ? "" : ", bias=false") + ", " +
         to_string(o.layout) + ")";
}

std::vector<ParameterRef> Conv2d::parameters() {
  std::vector<ParameterRef> refs{
      {.name = "weight", .value = &weight_, .grad = &weight_grad_, .role = ParameterRole::weight}};
  if (options_.bias)
    refs.push_back({.name = "bias", .value = &bias_, .grad = &bias_grad_, .role = ParameterRole::bias});
  return refs;
}

Shape Conv2d::output_shape(const Shape& input) const {
  const auto& o = options_;
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(describe() + ": " + why + ", got input " + input.to_string());
  };
  if (input.rank() != 4) fail("expects an input of rank 4 (N, C, H, W)");
  if (input[1] != o.in_channels) fail("expects C=" + std::to_string(o.in_channels) + " at dimension 1");
  if (input[0] < 1 || input[2] < 1 || input[3] < 1) fail("expects N, H and W >= 1");
  const std::int64_t extent = o.dilation * (o.kernel_size - 1) + 1;  // the dilated kernel
  if (input[2] + 2 * o.padding < extent || input[3] + 2 * o.padding < extent)
    fail("the kernel (extent " + std::to_string(extent) + " with dilation) is larger than the padded input (" +
         std::to_string(input[2] + 2 * o.padding) + " x " + std::to_string(input[3] + 2 * o.padding) + ")");
  auto out = [&](std::int64_t size) { return (size + 2 * o.padding - extent) / o.stride + 1; };
  return Shape{input[0], o.out_channels, out(input[2]), out(input[3])};
}

void Conv2d::check_input(const Tensor& x, const char* what) const {
  if (!x.defined()) throw std::invalid_argument(describe() + ": " + what + " is an undefined tensor");
  if (x.dtype() != DType::f32 || x.device() != Device::cpu)
    throw std::invalid_argument(describe() + ": " + what + " must be f32 on the cpu, got " + x.describe());
  if (x.rank() == 4 && x.layout() != options_.layout)
    throw std::invalid_argument(describe() + ": " + what + " must be " + to_string(options_.layout) +
                                " like the layer (no silent conversion), got " + x.describe());
}

// The parameters are public (weight() returns a reference): a loader may have replaced them.
void Conv2d::check_parameters() const {
  const auto& o = options_;
  const Shape w{o.out_channels, o.in_channels / o.groups, o.kernel_size, o.kernel_size};
  const Shape b{o.out_channels};
  auto ok = [](const Tensor& t, const Shape& s) { return t.defined() && t.shape() == s; };
  if (!ok(weight_, w) || !ok(weight_grad_, w) || (o.bias && (!ok(bias_, b) || !ok(bias_grad_, b))))
    throw std::logic_error(describe() + ": parameters were replaced by tensors of the wrong shape: weight " +
                           weight_.describe() + ", expected " + w.to_string() +
                           (o.bias ? ", bias " + bias_.describe() + ", expected " + b.to_string() : ""));
}

Conv2d::Primitives& Conv2d::primitives_for(const Shape& input) {
  if (primitives_ && primitives_->input == input) return *primitives_;
  primitives_.reset();  // a failure below leaves no half-built state behind
  const auto& o = options_;
  const Shape output = output_shape(input);
  const tag data_tag = o.layout == Layout::channels_last ? tag::nhwc : tag::nchw;
  const memory::dims weights_dims =
      o.groups == 1 ? memory::dims{o.out_channels, o.in_channels, o.kernel_size, o.kernel_size}
                    : memory::dims{o.groups, o.out_channels / o.groups, o.in_channels / o.groups,
                                   o.kernel_size, o.kernel_size};
  const memory::dims strides{o.stride, o.stride};
  const memory::dims dilates{o.dilation - 1, o.dilation - 1};  // oneDNN counts the gaps
  // Symmetric padding: oneDNN, like PyTorch, rounds the output size down, so the rows a
  // stride cannot reach are dropped by both.
  const memory::dims padding{o.padding, o.padding};

  auto p = std::make_unique<Primitives>();
  p->input = input;
  try {
    const dnnl::engine& engine = onednn::cpu_engine();
    p->src_md = memory::desc(input.dims(), memory::data_type::f32, data_tag);
    p->dst_md = memory::desc(output.dims(), memory::data_type::f32, data_tag);
    p->user_weights_md = memory::desc(weights_dims, memory::data_type::f32, o.groups == 1 ? tag::oihw : tag::goihw);
    const memory::desc any_weights_md(weights_dims, memory::data_type::f32, tag::any);
    if (o.bias) p->bias_md = memory::desc({o.out_channels}, memory::data_type::f32, tag::x);
    const auto algorithm = dnnl::algorithm::convolution_direct;
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    const auto forward_desc =
        o.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, p->src_md,
                                                 any_weights_md, p->bias_md, p->dst_md, strides, dilates,
                                                 padding, padding)
               : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, p->src_md,
                                                 any_weights_md, p->dst_md, strides, dilates, padding,
                                                 padding);
    p->forward_pd = dnnl::convolution_forward::primitive_desc(forward_desc, attr, engine);
    p->backward_data_pd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(algorithm, p->src_md, any_weights_md, p->dst_md, strides,
                                              dilates, padding, padding),
        attr, engine, p->forward_pd);
    const auto backward_weights_desc =
        o.bias ? dnnl::convolution_backward_weights::desc(algorithm, p->src_md, any_weights_md, p->bias_md,
                                                          p->dst_md, strides, dilates, padding, padding)
               : dnnl::convolution_backward_weights::desc(algorithm, p->src_md, any_weights_md, p->dst_md,
                                                          strides, dilates, padding, padding);
    p->backward_weights_pd =
        dnnl::convolution_backward_weights::primitive_desc(backward_weights_desc, attr, engine, p->forward_pd);
    p->forward = dnnl::convolution_forward(p->forward_pd);
    p->backward_data = dnnl::convolution_backward_data(p->backward_data_pd);
    p->backward_weights = dnnl::convolution_backward_weights(p->backward_weights_pd);

    p->forward_weights.prepare(p->user_weights_md, p->forward_pd.weights_desc());
    p->backward_data_reuses_forward_weights = p->backward_data_pd.weights_desc() == p->forward_pd.weights_desc();
    if (!p->backward_data_reuses_forward_weights)
      p->backward_data_weights.prepare(p->user_weights_md, p->backward_data_pd.weights_desc());

    p->diff_weights = memory(p->backward_weights_pd.diff_weights_desc(), engine);
    dnnl::post_ops accumulate;
    accumulate.append_sum(1.0f);
    dnnl::primitive_attr accumulate_attr;
    accumulate_attr.set_post_ops(accumulate);
    p->add_diff_weights = dnnl::reorder(dnnl::reorder::primitive_desc(
        engine, p->backward_weights_pd.diff_weights_desc(), engine, p->user_weights_md, accumulate_attr));
    if (o.bias) p->diff_bias = memory(p->backward_weights_pd.diff_bias_desc(), engine);

    const memory::desc scratchpads[] = {p->forward_pd.scratchpad_desc(), p->backward_data_pd.scratchpad_desc(),
                                        p->backward_weights_pd.scratchpad_desc()};
    memory::dim bytes = 1;
    for (const memory::desc& md : scratchpads) bytes = std::max<memory::dim>(bytes, md.get_size());
    p->scratchpad_buffer = memory(memory::desc({bytes}, memory::data_type::u8, tag::x), engine);
    void* shared = p->scratchpad_buffer.get_data_handle();
    p->forward_scratchpad = memory(scratchpads[0], engine, shared);
    p->backward_data_scratchpad = memory(scratchpads[1], engine, shared);
    p->backward_weights_scratchpad = memory(scratchpads[2], engine, shared);
  } catch (const dnnl::error& e) {
    throw std::runtime_error(describe() + ": oneDNN could not set up the convolution for input " +
                             input.to_string() + " -> " + output.to_string() + ": " + e.what());
  }
  primitives_ = std::move(p);
  return *primitives_;
}

std::string Conv2d::implementation() const {
  if (!primitives_) return "";
  return std::string("forward: ") + primitives_->forward_pd.impl_info_str() +
         "; backward data: " + primitives_->backward_data_pd.impl_info_str() +
         "; backward weights: " + primitives_->backward_weights_pd.impl_info_str();
}

Tensor Conv2d::forward(const Tensor& x) {
  check_input(x, "the input");
  const Shape out_shape = output_shape(x.shape());
  check_parameters();
  Primitives& p = primitives_for(x.shape());
  Tensor y = Tensor::empty(out_shape, options_.layout);
  const dnnl::engine& engine = onednn::cpu_engine();
  dnnl::stream& stream = onednn::cpu_stream();
  // oneDNN only reads src and the weights; the const_casts are for its memory handles.
  memory src(p.src_md, engine, const_cast<float*>(x.data_f32()));
  memory user_weights(p.user_weights_md, engine, weight_.data_f32());
  memory dst(p.dst_md, engine, y.data_f32());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                       {DNNL_ARG_WEIGHTS, p.forward_weights.convert(user_weights, stream)},
                                       {DNNL_ARG_DST, dst},
                                       {DNNL_ARG_SCRATCHPAD, p.forward_scratchpad}};
  if (options_.bias) args.insert({DNNL_ARG_BIAS, memory(p.bias_md, engine, bias_.data_f32())});
  p.forward.execute(stream, args);
  stream.wait();
  saved_input_ = x;
  return y;
}

Tensor Conv2d::backward(const Tensor& dy) {
  if (!saved_input_.defined()) throw std::logic_error(describe() + ": backward called before forward");
  check_input(dy, "dy");
  const Shape expected = output_shape(saved_input_.shape());
  if (!(dy.shape() == expected))
    throw std::invalid_argument(describe() + ": backward expects dy " + expected.to_string() +
                                " for the input " + saved_input_.describe() + ", got " + dy.describe());
  check_parameters();
  Primitives& p = primitives_for(saved_input_.shape());
  const dnnl::engine& engine = onednn::cpu_engine();
  dnnl::stream& stream = onednn::cpu_stream();
  memory src(p.src_md, engine, const_cast<float*>(saved_input_.data_f32()));
  memory diff_dst(p.dst_md, engine, const_cast<float*>(dy.data_f32()));

  // dW, db: oneDNN writes them into its own buffers; the layer adds them to the gradients.
  std::unordered_map<int, memory> weights_args{{DNNL_ARG_SRC, src},
                                               {DNNL_ARG_DIFF_DST, diff_dst},
                                               {DNNL_ARG_DIFF_WEIGHTS, p.diff_weights},
                                               {DNNL_ARG_SCRATCHPAD, p.backward_weights_scratchpad}};
  if (options_.bias) weights_args.insert({DNNL_ARG_DIFF_BIAS, p.diff_bias});
  p.backward_weights.execute(stream, weights_args);
  memory user_weight_grad(p.user_weights_md, engine, weight_grad_.data_f32());
  p.add_diff_weights.execute(stream, p.diff_weights, user_weight_grad);
  stream.wait();
  if (options_.bias) {
    const float* db = static_cast<const float*>(p.diff_bias.get_data_handle());
    float* grad = bias_grad_.data_f32();
    for (std::int64_t c = 0; c < options_.out_channels; ++c) grad[c] += db[c];
  }

  if (!compute_input_grad_) return Tensor();
  Tensor dx = Tensor::empty(saved_input_.shape(), options_.layout);
  memory user_weights(p.user_weights_md, engine, weight_.data_f32());
  // The forward's reordered weights are still current when both primitives chose one format.
  memory weights = p.backward_data_reuses_forward_weights ? p.forward_weights.last(user_weights)
                                                          : p.backward_data_weights.convert(user_weights, stream);
  p.backward_data.execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst},
                                   {DNNL_ARG_WEIGHTS, weights},
                                   {DNNL_ARG_DIFF_SRC, memory(p.src_md, engine, dx.data_f32())},
                                   {DNNL_ARG_SCRATCHPAD, p.backward_data_scratchpad}});
  stream.wait();
  return dx;
}

}  // namespace bnorm
