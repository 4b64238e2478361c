#include "engine/data/hdf5_file.h"

#include <hdf5/serial/hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "engine/check.h"

namespace kiln::data {

namespace {

// Closes any HDF5 identifier (file, group, dataset, attribute, space, type) when it goes out of scope.
struct Handle {
  hid_t id;
  explicit Handle(hid_t i) : id(i) {}
  ~Handle() {
    if (id >= 0) H5Idec_ref(id);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  bool ok() const { return id >= 0; }
};

// The innermost message of the library's error stack ("file signature not found"), for our one line.
std::string last_h5_error() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* s = static_cast<std::string*>(out);
        if (s->empty() && e->desc) *s = e->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? "unknown HDF5 error" : msg;
}

// The library prints its error stack to stderr by default; ours is the one-line InputError.
void silence_library() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

std::string where(const std::string& path, const std::string& object) { return path + ": '" + object + "'"; }

// Element count of a dataspace; scalars have one element and shape [].
int64_t extent(hid_t space, Shape* shape) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return -1;
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  shape->assign(dims.begin(), dims.end());
  return H5Sget_simple_extent_npoints(space);
}

}  // namespace

H5File::H5File(const std::string& path) : path_(path) {
  silence_library();
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw InputError("cannot open '" + path + "': " + std::strerror(errno));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(path + ": not an HDF5 file (no HDF5 signature)");
  }
  id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id_ < 0) throw InputError(path + ": corrupt HDF5 file (" + last_h5_error() + ")");
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

bool H5File::exists(const std::string& object) const {
  if (object.empty() || object == "/") return true;
  // H5Lexists fails (rather than answering false) when a parent is missing: test each prefix in turn.
  size_t at = object[0] == '/' ? 1 : 0;
  while (true) {
    const size_t slash = object.find('/', at);
    const std::string prefix = object.substr(0, slash);
    if (!prefix.empty() && prefix != "/" && H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    at = slash + 1;
  }
}

bool H5File::is_dataset(const std::string& object) const {
  if (!exists(object)) return false;
  Handle o(H5Oopen(id_, object.c_str(), H5P_DEFAULT));
  return o.ok() && H5Iget_type(o.id) == H5I_DATASET;
}

std::vector<double> H5File::read_doubles(const std::string& dataset, Shape* shape) const {
  if (!exists(dataset)) throw InputError(path_ + ": no dataset '" + dataset + "'");
  if (!is_dataset(dataset)) throw InputError(where(path_, dataset) + " is a group, not a dataset");
  Handle d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
  if (!d.ok()) throw InputError(where(path_, dataset) + ": cannot open (" + last_h5_error() + ")");
  Handle type(H5Dget_type(d.id));
  const H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw InputError(where(path_, dataset) + " holds " +
                     (cls == H5T_STRING ? std::string("strings") : "non-numeric values") +
                     "; kiln reads integer and floating-point datasets");
  Handle space(H5Dget_space(d.id));
  const int64_t n = extent(space.id, shape);
  if (n < 0) throw InputError(where(path_, dataset) + ": unreadable shape (" + last_h5_error() + ")");
  constexpr int64_t kMax = int64_t{1} << 34;  // 128 GiB of doubles: no real dataset, a corrupt header
  if (n > kMax) throw InputError(where(path_, dataset) + ": " + std::to_string(n) + " elements, too many");
  std::vector<double> out(static_cast<size_t>(n));
  if (n > 0 && H5Dread(d.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw InputError(where(path_, dataset) + ": cannot read (" + last_h5_error() + ")");
  return out;
}

Tensor H5File::read(const std::string& dataset) const {
  Shape shape;
  std::vector<double> v = read_doubles(dataset, &shape);
  std::vector<float> f(v.begin(), v.end());
  return Tensor(shape, std::move(f));
}

bool H5File::has_attr(const std::string& object, const std::string& attr) const {
  if (!exists(object)) return false;
  const htri_t r = H5Aexists_by_name(id_, object.c_str(), attr.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::vector<std::string> H5File::attr_strings(const std::string& object, const std::string& attr) const {
  const std::string at = where(path_, object) + " attribute '" + attr + "'";
  if (!has_attr(object, attr)) throw InputError(where(path_, object) + " has no attribute '" + attr + "'");
  Handle a(H5Aopen_by_name(id_, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.ok()) throw InputError(at + ": cannot open (" + last_h5_error() + ")");
  Handle type(H5Aget_type(a.id)), space(H5Aget_space(a.id));
  Shape shape;
  const int64_t n = extent(space.id, &shape);
  if (n < 0) throw InputError(at + ": unreadable shape");
  if (H5Tget_class(type.id) != H5T_STRING) {
    if (n == 0) return {};
    throw InputError(at + " is not text");
  }
  std::vector<std::string> out;
  if (n == 0) return out;
  if (H5Tis_variable_str(type.id) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));  // h5py writes UTF-8; the library converts no charsets
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (H5Aread(a.id, mem.id, ptrs.data()) < 0)
      throw InputError(at + ": cannot read (" + last_h5_error() + ")");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, ptrs.data());
    return out;
  }
  const size_t size = H5Tget_size(type.id);
  if (size == 0 || size > (size_t{1} << 28)) throw InputError(at + ": bad string size");
  std::string buf(size * static_cast<size_t>(n), '\0');
  if (H5Aread(a.id, type.id, buf.data()) < 0)
    throw InputError(at + ": cannot read (" + last_h5_error() + ")");
  for (int64_t i = 0; i < n; ++i) {
    std::string s = buf.substr(static_cast<size_t>(i) * size, size);
    s.erase(std::find(s.begin(), s.end(), '\0'), s.end());  // fixed-length strings are NUL-padded
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> H5File::children(const std::string& group) const {
  if (!exists(group)) throw InputError(path_ + ": no group '" + group + "'");
  Handle g(H5Gopen2(id_, group.c_str(), H5P_DEFAULT));
  if (!g.ok()) throw InputError(where(path_, group) + " is not a group");
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Literate(
      g.id, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->push_back(name);
        return 0;
      },
      &names);
  return names;
}

}  // namespace kiln::data
