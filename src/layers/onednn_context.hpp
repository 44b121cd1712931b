// src/layers/onednn_context.hpp: the one oneDNN CPU engine and stream that every layer shares.
//
// Why process-wide: an engine is cheap to keep and costly to create, and primitives built on
// one engine can run on any stream of it. The stream is per thread (a oneDNN stream must not
// be used by two threads at once); on the CPU with the OpenMP runtime execution is
// synchronous, so a stream holds no pending work between calls.
// Private to the library: the public headers do not include oneDNN.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace bnorm::onednn {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();  // this thread's stream on cpu_engine()

}  // namespace bnorm::onednn
