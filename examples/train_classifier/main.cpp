// Trains a batch-normalized network with bnorm's C++ API, step by step: the pieces that
// `bnorm train` puts together (bnorm/train/trainer.hpp does all of this in one call).
//
//   train_classifier [DATA_DIR] [STEPS] [OUT.safetensors]
// DATA_DIR holds MNIST-style IDX files (default: /usr/share/datasets/fashion-mnist).
#include <bnorm/data/dataset.hpp>
#include <bnorm/data/loader.hpp>
#include <bnorm/data/standardize.hpp>
#include <bnorm/io/model_file.hpp>
#include <bnorm/layers/loss.hpp>
#include <bnorm/model/model.hpp>
#include <bnorm/train/evaluate.hpp>
#include <bnorm/train/optimizer.hpp>
#include <bnorm/train/schedule.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
  const std::string data_dir = argc > 1 ? argv[1] : bnorm::default_dataset_dir;
  const std::int64_t steps = argc > 2 ? std::atoll(argv[2]) : 300;
  const std::string out = argc > 3 ? argv[3] : "classifier.safetensors";

  // Data: statistics for standardization come from the training set only.
  bnorm::TrainTestData data = bnorm::load_dataset_folder(data_dir);
  const bnorm::Standardizer standardizer = bnorm::fit_standardizer(data.train, bnorm::Standardization::per_pixel);
  standardizer.apply(data.train);
  standardizer.apply(data.test);

  // A network from spec text: BN after each weight layer, the biases before BN dropped.
  const bnorm::Layout layout = bnorm::Layout::channels_last;
  bnorm::Model model = bnorm::Model::build(
      "conv3x3(16) bn relu maxpool2 conv3x3(32) bn relu maxpool2 flatten linear(64) bn relu linear(10)",
      bnorm::Shape{data.train.channels(), data.train.height(), data.train.width()},
      {.layout = layout, .seed = 1});
  model.net.set_compute_input_grad(false);

  bnorm::Sgd optimizer(model.net.parameters(), {.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  const bnorm::LrSchedule schedule(bnorm::ScheduleKind::cosine, 0.05, {.total_steps = steps, .warmup_steps = steps / 10});
  bnorm::BatchLoader loader(data.train, {.batch_size = 64, .seed = 1, .drop_last = true, .layout = layout});

  bnorm::Batch batch;
  for (std::int64_t step = 0; step < steps; ++step) {
    if (!loader.next(batch)) loader.next(batch);  // next() is false once at the end of each epoch
    optimizer.set_learning_rate(schedule.lr(step));
    model.net.zero_grad();
    const bnorm::Tensor logits = model.net.forward(batch.x);
    const bnorm::CrossEntropyResult loss = bnorm::softmax_cross_entropy(logits, batch.labels, true);
    model.net.backward(loss.dlogits);
    optimizer.step();
    if ((step + 1) % 50 == 0) std::printf("step %lld: loss %.4f\n", static_cast<long long>(step + 1), loss.loss);
  }

  // Eval mode: BatchNorm uses its running statistics.
  const bnorm::EvalResult test = bnorm::evaluate(model.net, data.test, {.layout = layout});
  std::printf("test accuracy %.2f%% on %lld examples\n", 100 * test.accuracy, static_cast<long long>(test.examples));
  bnorm::save_model_file(out, model, standardizer, data.train.class_names);
  std::printf("saved %s (try: bnorm eval --model %s)\n", out.c_str(), out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_classifier: %s\n", e.what());
  return 1;
}
