// cereal serialization of std::string and std::vector for checkpoints, byte-for-byte the format of cereal's
// own <cereal/types/string.hpp> and <vector.hpp> (include this instead of those), with one difference: a
// stored length is checked against the bytes that remain before anything is allocated. A damaged (or
// crafted) file whose CRC still matches could otherwise ask for 2^60 bytes in one resize(); now it is an
// InputError like any other corruption.
#pragma once
#include <cereal/cereal.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/check.h"

namespace kiln::train {
// The bytes an archive being read can still hold; every stored element takes at least one.
inline thread_local uint64_t cereal_bytes_left = UINT64_MAX;
}  // namespace kiln::train

namespace cereal {

namespace kiln_detail {
inline void check_length(size_type n, size_t element_bytes) {
  if (n > kiln::train::cereal_bytes_left / std::max<size_t>(element_bytes, 1))
    throw kiln::InputError("a stored length of " + std::to_string(n) + " is longer than the file");
}
template <class T>
constexpr bool kRaw = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;
}  // namespace kiln_detail

template <class Archive, class T, class A>
void CEREAL_SAVE_FUNCTION_NAME(Archive& ar, const std::vector<T, A>& v) {
  ar(make_size_tag(static_cast<size_type>(v.size())));
  if constexpr (kiln_detail::kRaw<T>) {
    ar(binary_data(v.data(), v.size() * sizeof(T)));
  } else {
    for (const T& x : v) ar(x);
  }
}

template <class Archive, class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(Archive& ar, std::vector<T, A>& v) {
  size_type n;
  ar(make_size_tag(n));
  kiln_detail::check_length(n, kiln_detail::kRaw<T> ? sizeof(T) : 1);
  v.resize(static_cast<size_t>(n));
  if constexpr (kiln_detail::kRaw<T>) {
    ar(binary_data(v.data(), static_cast<size_t>(n) * sizeof(T)));
  } else {
    for (T& x : v) ar(x);
  }
}

template <class Archive, class C, class Tr, class A>
void CEREAL_SAVE_FUNCTION_NAME(Archive& ar, const std::basic_string<C, Tr, A>& s) {
  ar(make_size_tag(static_cast<size_type>(s.size())));
  ar(binary_data(s.data(), s.size() * sizeof(C)));
}

template <class Archive, class C, class Tr, class A>
void CEREAL_LOAD_FUNCTION_NAME(Archive& ar, std::basic_string<C, Tr, A>& s) {
  size_type n;
  ar(make_size_tag(n));
  kiln_detail::check_length(n, sizeof(C));
  s.resize(static_cast<size_t>(n));
  ar(binary_data(const_cast<C*>(s.data()), static_cast<size_t>(n) * sizeof(C)));
}

}  // namespace cereal
