#include "engine/train/checkpoint.h"

#include <zlib.h>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/utility.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/file_io.h"
#include "engine/train/cereal_bounded.h"

namespace kiln {

template <class Archive>
void save(Archive& ar, const Tensor& t) {
  ar(t.shape(), t.storage());
}
template <class Archive>
void load(Archive& ar, Tensor& t) {
  Shape s;
  std::vector<float> d;
  ar(s, d);
  for (int64_t dim : s)
    if (dim < 0) throw InputError("negative dimension in a stored tensor");
  if (shape_numel(s) != static_cast<int64_t>(d.size()))
    throw InputError("stored tensor data does not match its shape");
  t = Tensor(s, std::move(d));
}

namespace data {
template <class Archive>
void serialize(Archive& ar, Standardizer& s) {
  ar(s.mean, s.scale);
}
}  // namespace data

namespace train {

template <class Archive>
void serialize(Archive& ar, EpochRecord& r) {
  ar(r.epoch, r.lr, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.val_auc, r.val_mse,
     r.seconds, r.samples_per_second, r.extra);
}

// The payload of format version `version` (fields are only ever appended).
template <class Archive>
void serialize_fields(Archive& ar, Checkpoint& c, uint32_t version) {
  ar(c.model_yaml, c.input_shape, c.params, c.buffers, c.standardizer, c.class_names, c.feature_names, c.task,
     c.config_yaml, c.optimizer_state, c.history, c.seed);
  if (version >= 2) ar(c.best_state);
}

namespace {
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'C', 'K', 'P', 'T'};
constexpr size_t kHeader = 8 + 4 + 8 + 4;

template <class T>
void put(std::string& s, T v) {  // little-endian
  for (size_t i = 0; i < sizeof(T); ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
template <class T>
T get(const std::string& s, size_t at) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<T>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}
uint32_t crc(const std::string& payload, size_t from) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(payload.data() + from),
                                     static_cast<uInt>(payload.size() - from)));
}
}  // namespace

Checkpoint make_checkpoint(nn::Model& m, const data::Standardizer& st, const data::Dataset& reference) {
  Checkpoint c;
  c.model_yaml = m.spec_yaml();
  c.input_shape = m.input_shape();
  for (nn::Parameter* p : m.parameters()) c.params[p->name] = p->var.value();
  for (const nn::Buffer& b : m.buffers()) c.buffers[b.name] = *b.tensor;
  c.standardizer = st;
  c.class_names = reference.class_names;
  c.feature_names = reference.feature_names;
  c.task = reference.labels.empty() && reference.size() > 0 ? "regression" : "classification";
  return c;
}

void save_checkpoint(const Checkpoint& c, const std::string& path) {
  std::ostringstream body;
  {
    cereal::PortableBinaryOutputArchive ar(body);
    serialize_fields(ar, const_cast<Checkpoint&>(c), kCheckpointVersion);  // saving only reads c
  }
  std::string payload = body.str();
  std::string file(kMagic, 8);
  put<uint32_t>(file, kCheckpointVersion);
  put<uint64_t>(file, payload.size());
  put<uint32_t>(file, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(payload.data()),
                                                  static_cast<uInt>(payload.size()))));
  file += payload;
  write_file_atomic(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open checkpoint '" + path + "': " + std::strerror(errno));
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (file.empty()) throw InputError(path + ": empty file, not a kiln checkpoint");
  if (file.size() < 8 && std::memcmp(file.data(), kMagic, file.size()) == 0)
    throw InputError(path + ": truncated checkpoint (" + std::to_string(file.size()) + " bytes)");
  if (file.size() < 8 || std::memcmp(file.data(), kMagic, 8) != 0)
    throw InputError(path + ": not a kiln checkpoint (bad magic number)");
  if (file.size() < kHeader)
    throw InputError(path + ": truncated checkpoint (" + std::to_string(file.size()) +
                     " bytes, header needs " + std::to_string(kHeader) + ")");
  uint32_t version = get<uint32_t>(file, 8);
  if (version < 1 || version > kCheckpointVersion)
    throw InputError(path + ": checkpoint format version " + std::to_string(version) +
                     ", this kiln reads versions 1 to " + std::to_string(kCheckpointVersion));
  uint64_t size = get<uint64_t>(file, 12);
  if (file.size() - kHeader != size)
    throw InputError(path + ": truncated or padded checkpoint (payload " +
                     std::to_string(file.size() - kHeader) + " bytes, header says " + std::to_string(size) +
                     ")");
  if (crc(file, kHeader) != get<uint32_t>(file, 20))
    throw InputError(path + ": corrupted checkpoint (CRC-32 mismatch)");
  Checkpoint c;
  try {
    std::istringstream body(file.substr(kHeader));
    cereal::PortableBinaryInputArchive ar(body);
    struct Unbound {
      ~Unbound() { cereal_bytes_left = UINT64_MAX; }
    } unbound;
    cereal_bytes_left = size;  // no stored length can exceed the payload
    serialize_fields(ar, c, version);
  } catch (const InputError& e) {
    throw InputError(path + ": corrupted checkpoint (" + e.what() + ")");
  } catch (const std::exception& e) {
    throw InputError(path + ": corrupted checkpoint (" + e.what() + ")");
  }
  c.path = path;
  // Training never writes a non-finite value, nor a sample of this size: such a file was made elsewhere or
  // damaged before its CRC was computed; exporting or resuming it would fail far from the cause.
  const int64_t sample = shape_numel(c.input_shape);
  if (c.input_shape.empty() || sample < 1 || sample > (int64_t{1} << 26))
    throw InputError(path + ": corrupted checkpoint (input shape " + shape_str(c.input_shape) + ")");
  for (const auto* group : {&c.params, &c.buffers, &c.optimizer_state, &c.best_state})
    for (const auto& [name, t] : *group)
      for (int64_t i = 0; i < t.size(); ++i)
        if (!std::isfinite(t[i]))
          throw InputError(path + ": tensor '" + name + "' holds " + (std::isnan(t[i]) ? "nan" : "inf") +
                           " at element " + std::to_string(i) + "; a checkpoint holds finite values only");
  return c;
}

void load_weights(nn::Model& m, const Checkpoint& c) {
  const std::string file = c.path.empty() ? "checkpoint" : c.path;
  for (nn::Parameter* p : m.parameters()) {
    auto it = c.params.find(p->name);
    if (it == c.params.end())
      throw InputError(file + ": the checkpoint has no parameter '" + p->name +
                       "' (was it trained with another config?)");
    if (it->second.shape() != p->var.shape())
      throw InputError(file + ": parameter '" + p->name + "' has shape " + shape_str(it->second.shape()) +
                       ", the model needs " + shape_str(p->var.shape()));
    p->var.value() = it->second;
  }
  // A parameter the model lacks (e.g. an HGQ checkpoint read with a float config) would be dropped silently.
  std::set<std::string> used;
  for (nn::Parameter* p : m.parameters()) used.insert(p->name);
  for (const auto& kv : c.params)
    if (!used.count(kv.first))
      throw InputError(
          file + ": the checkpoint has parameter '" + kv.first +
          "', which this model does not (was it trained with another config, e.g. with compression:?)");
  for (const nn::Buffer& b : m.buffers()) {
    auto it = c.buffers.find(b.name);
    if (it == c.buffers.end()) throw InputError(file + ": the checkpoint has no buffer '" + b.name + "'");
    if (it->second.shape() != b.tensor->shape())
      throw InputError(file + ": buffer '" + b.name + "' has shape " + shape_str(it->second.shape()) +
                       ", the model needs " + shape_str(b.tensor->shape()));
    *b.tensor = it->second;
  }
}

std::unique_ptr<nn::Model> restore_model(const Checkpoint& c) {
  auto m = nn::Model::from_yaml(c.model_yaml, c.input_shape, c.seed,
                                c.path.empty() ? "checkpoint model spec" : c.path + " (model spec)");
  load_weights(*m, c);
  return m;
}

}  // namespace train
}  // namespace kiln
