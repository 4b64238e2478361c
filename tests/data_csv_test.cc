// CSV loading: the jet-tagging format (a small synthetic file), quoting, line endings, gzip, headerless
// files with column indices, regression, and one test per kind of bad input.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/data/gzfile.h"
#include "engine/data/loaders.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::data;
using kiln::testing::file_bytes;
using kiln::testing::TempDir;

namespace {

Dataset csv(const std::string& path, const std::string& label = "", bool header = true) {
  CsvOptions o;
  o.path = path;
  o.label = label;
  o.header = header;
  return load_csv(o);
}

}  // namespace

static const char* kJetColumns[] = {"zlogz",         "c1_b0_mmdt",    "c1_b1_mmdt", "c1_b2_mmdt",
                                    "c2_b1_mmdt",    "c2_b2_mmdt",    "d2_b1_mmdt", "d2_b2_mmdt",
                                    "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt", "m2_b2_mmdt",
                                    "n2_b1_mmdt",    "n2_b2_mmdt",    "mass_mmdt",  "multiplicity"};

TEST_CASE("csv: synthetic file in the OpenML hls4ml_lhc_jets_hlf format") {
  // Synthetic values (row r, feature f -> r + f / 4): they test the format, not physics. The class
  // column mixes bare, '-quoted and "-quoted labels; \r\n endings and trailing blank lines as on Windows.
  const char* classes[] = {"g", "'q'", "\"w\"", "z", "'t'", "q", "t"};
  std::ostringstream s;
  for (int f = 0; f < 16; ++f) s << kJetColumns[f] << ',';
  s << "class\r\n";
  for (int r = 0; r < 7; ++r) {
    for (int f = 0; f < 16; ++f) s << (r + f / 4.0) << ',';
    s << classes[r] << "\r\n";
  }
  s << "\r\n\r\n";
  TempDir tmp;
  Dataset d = csv(tmp.write("jets_synthetic.csv", s.str()), "class");
  CHECK(d.x.shape() == Shape{7, 16});
  CHECK(d.size() == 7);
  CHECK(d.num_classes() == 5);
  CHECK(d.class_names == std::vector<std::string>{"g", "q", "t", "w", "z"});
  CHECK(d.labels == std::vector<int>{0, 1, 3, 4, 2, 1, 2});
  CHECK(d.feature_names.size() == 16);
  CHECK(d.feature_names.front() == "zlogz");
  CHECK(d.feature_names.back() == "multiplicity");
  CHECK(d.x.at({3, 5}) == 3.f + 5 / 4.f);
  CHECK(d.x.at({6, 15}) == 6.f + 15 / 4.f);
  CHECK(d.targets.empty());

  // The label defaults to the last column; a feature subset by name keeps the given order.
  CHECK(csv(tmp.write("jets_synthetic2.csv", s.str())).labels == d.labels);
  CsvOptions o;
  o.path = tmp.write("jets_synthetic3.csv", s.str());
  o.label = "class";
  o.features = {"mass_mmdt", "zlogz"};
  Dataset sub = load_csv(o);
  CHECK(sub.x.shape() == Shape{7, 2});
  CHECK(sub.x.at({2, 0}) == 2.f + 14 / 4.f);
  CHECK(sub.x.at({2, 1}) == 2.f);
  CHECK(sub.feature_names == std::vector<std::string>{"mass_mmdt", "zlogz"});
}

TEST_CASE("csv: gzipped, headerless, integer labels sorted numerically, quoted fields") {
  TempDir tmp;
  // Labels 10, 2, 1 sort as numbers (1 < 2 < 10), not as text.
  std::string text = "0.5,1,10\n1.5,2,2\n2.5,3,1\n3.5,4,10\n";
  std::string path = tmp.write_gz("small.csv.gz", text);
  CHECK(file_bytes(path).substr(0, 2) == "\x1f\x8b");
  Dataset d = csv(path, "-1", false);
  CHECK(d.x.shape() == Shape{4, 2});
  CHECK(d.class_names == std::vector<std::string>{"1", "2", "10"});
  CHECK(d.labels == std::vector<int>{2, 1, 0, 2});
  CHECK(d.feature_names == std::vector<std::string>{"col0", "col1"});
  CHECK(d.x.at({3, 0}) == 3.5f);

  CsvOptions o;
  o.path = path;
  o.header = false;
  o.label = "0";
  o.features = {"-1"};
  o.regression = true;
  Dataset r = load_csv(o);
  CHECK(r.labels.empty());
  CHECK(r.targets.shape() == Shape{4, 1});
  CHECK(r.targets[1] == 1.5f);
  CHECK(r.x[0] == 10.f);

  // Quoted fields may hold the delimiter and doubled quotes; spaces around fields are ignored.
  Dataset q =
      csv(tmp.write("quoted.csv", "\"a,1\", b ,label\n 1 , \"2\" ,\"x \"\"y\"\"\"\n3,4,'it''s'\n"), "label");
  CHECK(q.feature_names == std::vector<std::string>{"a,1", "b"});
  CHECK(q.class_names == std::vector<std::string>{"it's", "x \"y\""});
  CHECK(q.x.at({0, 1}) == 2.f);

  // Space-separated with runs of blanks (sklearn's diabetes files).
  CsvOptions sp;
  sp.path = tmp.write("spaces.txt", "  1.0   2.0  3.5\n4 5\t6\n");
  sp.header = false;
  sp.delimiter = ' ';
  sp.regression = true;
  Dataset s = load_csv(sp);
  CHECK(s.x.shape() == Shape{2, 2});
  CHECK(s.targets[0] == 3.5f);
  CHECK(s.targets[1] == 6.f);
}

TEST_CASE("csv: malformed numbers and non-finite values name file, line and column") {
  TempDir tmp;
  std::string p = tmp.write("bad_number.csv", "a,b,label\n1,2,x\n\n3,abc,y\n");
  CHECK_INPUT_ERROR(csv(p, "label"),
                    "bad_number.csv:4: column 'b' (field 2): cannot parse 'abc' as a number");
  CHECK_THROWS_WITH_AS(csv(p, "label"), doctest::Contains("bad_number.csv:4"), InputError);
  p = tmp.write("empty_field.csv", "a,b,label\n1,,x\n");
  CHECK_INPUT_ERROR(csv(p, "label"), "empty_field.csv:2: column 'b' (field 2)", "empty field");
  p = tmp.write("nan.csv", "a,b,label\r\n1,2,x\r\n3,4,y\r\n5,nan,z\r\n");
  CHECK_INPUT_ERROR(csv(p, "label"), "nan.csv:4: column 'b' (field 2): value 'nan' is not finite");
  p = tmp.write("inf.csv", "a,b,label\n-inf,2,x\n");
  CHECK_INPUT_ERROR(csv(p, "label"), "inf.csv:2: column 'a' (field 1)", "'-inf' is not finite");
  p = tmp.write("huge.csv", "a,b,label\n1e39,2,x\n");
  CHECK_INPUT_ERROR(csv(p, "label"), "huge.csv:2: column 'a'", "'1e39' is out of float32 range");
  p = tmp.write("bad_target.csv", "a,y\n1,2\n2,oops\n");
  CsvOptions o;
  o.path = p;
  o.label = "y";
  o.regression = true;
  CHECK_INPUT_ERROR(load_csv(o), "bad_target.csv:3: column 'y' (field 2): cannot parse 'oops' as a number");
  p = tmp.write("float_classes.csv", "a,y\n1,2\n2,0.5\n");
  CHECK_INPUT_ERROR(csv(p, "y"), "float_classes.csv:3", "'0.5'", "regression=true");
  p = tmp.write("no_label.csv", "a,y\n1,2\n2,\n");
  CHECK_INPUT_ERROR(csv(p, "y"), "no_label.csv:3: column 'y' (field 2): empty class label");
}

TEST_CASE("csv: structural errors") {
  TempDir tmp;
  std::string p = tmp.write("short_row.csv", "a,b,label\n1,2,x\n3,4\n");
  CHECK_INPUT_ERROR(csv(p, "label"), "short_row.csv:3: expected 3 fields (as in the header) but found 2");
  p = tmp.write("long_row.csv", "1,2,3\n4,5,6,7\n");
  CHECK_INPUT_ERROR(csv(p, "-1", false), "long_row.csv:2: expected 3 fields (as on line 1) but found 4");
  p = tmp.write("cols.csv", "a,b,label\n1,2,x\n");
  CHECK_INPUT_ERROR(csv(p, "class"),
                    "cols.csv: no column named 'class' for the label; the columns are: a, b, label");
  CsvOptions o;
  o.path = p;
  o.label = "label";
  o.features = {"a", "zlogz"};
  CHECK_INPUT_ERROR(load_csv(o), "cols.csv", "no column named 'zlogz' for the feature", "a, b, label");
  o.features = {"a", "label"};
  CHECK_INPUT_ERROR(load_csv(o), "cols.csv", "'label' is both the label and a feature");
  CHECK_INPUT_ERROR(csv(p, "3", false), "cols.csv: label column index 3 is out of range for 3 columns");
  CHECK_INPUT_ERROR(csv(p, "label", false), "cols.csv: label column 'label' is not a column index");
  p = tmp.write("empty.csv", "");
  CHECK_INPUT_ERROR(csv(p), "empty.csv: empty file");
  p = tmp.write("blank.csv", "\n  \r\n\n");
  CHECK_INPUT_ERROR(csv(p), "blank.csv: empty file");
  p = tmp.write("header_only.csv", "a,b,label\r\n\r\n");
  CHECK_INPUT_ERROR(csv(p), "header_only.csv: no data rows after the header");
  p = tmp.write("quote.csv", "a,label\n1,\"x\n");
  CHECK_INPUT_ERROR(csv(p), "quote.csv:2: unterminated \" quote in field 2");
  p = tmp.write("after_quote.csv", "a,label\n1,\"x\"y\n");
  CHECK_INPUT_ERROR(csv(p), "after_quote.csv:2: unexpected text 'y' after the closing quote of field 2");
  p = tmp.write("one_col.csv", "label\nx\n");
  CHECK_INPUT_ERROR(csv(p), "one_col.csv: no feature columns");
  p = tmp.write("binary.csv", "a,label\n1,\x01\x02\n2,y\n1\x7f,y\n");
  CHECK_INPUT_ERROR(csv(p), "binary.csv:4: column 'a' (field 1): cannot parse '1\\x7f' as a number");
}

TEST_CASE("files: missing, directories, truncated and corrupt gzip") {
  TempDir tmp;
  std::string missing = (tmp.dir / "missing.csv").string();
  CHECK_INPUT_ERROR(csv(missing), "cannot open '" + missing + "': No such file or directory");
  CHECK_INPUT_ERROR(read_file(tmp.dir.string()), "cannot open '" + tmp.dir.string() + "': is a directory");

  std::string text;
  for (int i = 0; i < 2000; ++i) text += std::to_string(i) + "," + std::to_string(i % 7) + "\n";
  std::string gz = file_bytes(tmp.write_gz("full.csv.gz", text));
  CHECK(read_file(tmp.dir.string() + "/full.csv.gz") == text);
  std::string cut = tmp.write("cut.csv.gz", gz.substr(0, gz.size() / 2));
  CHECK_INPUT_ERROR(csv(cut, "-1", false), "cut.csv.gz: truncated gzip data (unexpected end of file)");
  std::string no_trailer = tmp.write("no_trailer.csv.gz", gz.substr(0, gz.size() - 4));
  CHECK_INPUT_ERROR(read_file(no_trailer), "no_trailer.csv.gz: truncated gzip data");
  std::string bad = gz;
  bad[bad.size() - 6] = static_cast<char>(bad[bad.size() - 6] ^ 0x55);  // inside the CRC-32 trailer
  std::string bad_path = tmp.write("bad_crc.csv.gz", bad);
  CHECK_INPUT_ERROR(csv(bad_path, "-1", false), "bad_crc.csv.gz: corrupt gzip data (incorrect data check)");
}

TEST_CASE("csv: messages quote a short prefix of huge fields (a one-line 5 MB file)") {
  // One 5 MB token is the whole header: it used to come back whole in "the columns are: ...".
  TempDir tmp;
  std::string p = tmp.write("one_line.csv", std::string(5 << 20, 'z'));
  CHECK_INPUT_ERROR(csv(p, "class"), "one_line.csv: no column named 'class'", "the columns are: zzz", "...");
  CHECK(testing::error_of([&] { csv(p, "class"); }).size() < 300);
  // Many long names: a bounded number of them, each clipped.
  std::string header;
  for (int c = 0; c < 2000; ++c) header += std::string(100, static_cast<char>('a' + c % 26)) + ",";
  p = tmp.write("wide.csv", header + "y\n");
  const std::string msg = testing::error_of([&] { csv(p, "class"); });
  CHECK(msg.find("(2001 columns)") != std::string::npos);
  CHECK(msg.size() < 1000);
  // The label column's name in the non-integer class message.
  p = tmp.write("frac.csv", "a," + std::string(1000, 'L') + "\n1,0.5\n");
  const std::string frac = testing::error_of([&] { csv(p); });
  CHECK(frac.find("holds the non-integer number '0.5'") != std::string::npos);
  CHECK(frac.size() < 300);
}

TEST_CASE("csv: a wide header over blank lines reserves memory for the data, not rows x columns") {
  // 100000 columns and 100000 blank lines: reserving 10^10 floats used to throw std::bad_alloc.
  TempDir tmp;
  std::string text;
  for (int c = 0; c < 100000; ++c) text += "0,";
  text += "y" + std::string(100000, '\n');
  CHECK_INPUT_ERROR(csv(tmp.write("wide_blank.csv", text)), "wide_blank.csv: no data rows after the header");
}
