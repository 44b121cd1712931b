// bnorm/io/state_dict.hpp: a layer's (a whole model's) state as named tensors, and model files.
//
// state_dict(layer) lists what a model file must keep, named as the layer names it (PyTorch's
// convention, "conv1.weight", "bn1.running_mean"):
//   every parameter             F32, its logical shape
//   every f32 buffer            F32 (running_mean, running_var)
//   every counter buffer        I64 with shape () (num_batches_tracked), as PyTorch saves it.
// load_state_dict(layer, file) is its inverse and is strict and all-or-nothing: every name the
// layer expects must be in the file with the same dtype and shape, and every name in the file
// must be expected (except under options.ignored_prefixes, e.g. a checkpoint's "optimizer.");
// everything is checked before anything is written, so on error the layer is unchanged. The
// error (std::runtime_error) lists every problem, one per line:
//   "conv2.weight: model expects F32 (32, 32, 3, 3), file has F32 (64, 32, 3, 3)".
//
// A model file is a safetensors file (bnorm/io/safetensors.hpp) holding the state_dict plus
// string metadata; the metadata says how to rebuild the layer (spec_metadata_key) and anything
// else the caller wants (input shape, layout, input standardization). A checkpoint is the same
// file with more named tensors (optimizer slots, step counters, RNG words), added and read
// back with the helpers of bnorm/io/named_tensor.hpp.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bnorm/io/named_tensor.hpp"
#include "bnorm/io/safetensors.hpp"
#include "bnorm/layers/layer.hpp"

namespace bnorm {

// The model spec string from which the layer is rebuilt before its state is loaded.
inline constexpr const char* spec_metadata_key = "bnorm.spec";

// Parameters first, then buffers, each in the layer's order. Throws std::logic_error if the
// layer reports two pieces of state under one name.
std::vector<NamedTensor> state_dict(Layer& layer);

struct LoadStateOptions {
  // File tensors whose names start with one of these are not the layer's and are skipped
  // ("optimizer.", "trainer."): how a model is loaded from a checkpoint.
  std::vector<std::string> ignored_prefixes;
};
void load_state_dict(Layer& layer, const SafetensorsFile& file, const LoadStateOptions& options = {});

// state_dict + metadata, written atomically.
void save_model(const std::filesystem::path& path, Layer& model, const Metadata& metadata = {});
// Loads the file's state into `model`, which the caller has built already, and returns the
// file's metadata. (To build the model from the spec stored in the file, read the file once
// with load_safetensors, build from file.metadata_at(spec_metadata_key), then load_state_dict.)
Metadata load_model(const std::filesystem::path& path, Layer& model, const LoadStateOptions& options = {});

}  // namespace bnorm
