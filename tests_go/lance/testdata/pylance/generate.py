# Generates the pylance-written fixtures of tests_go/lance (run with pylance installed).
import lance, pyarrow as pa, json, shutil, sys, os
out = sys.argv[1]
def tbl(start, n):
    ids = list(range(start, start + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "color": pa.array([None if i % 7 == 0 else ["red", "green", "blue"][i % 3] for i in ids], pa.string()),
        "tags": pa.array([None if i % 5 == 0 else [f"t{i}"] * (i % 3) for i in ids], pa.list_(pa.string())),
        "vec": pa.array([[float(i), i + 0.5] for i in ids], pa.list_(pa.float32(), 2)),
        "st": pa.array([{"a": i, "b": None if i % 4 == 0 else f"s{i}"} for i in ids], pa.struct([("a", pa.int32()), ("b", pa.string())])),
    })
uri = os.path.join(out, "mixed")
lance.write_dataset(tbl(0, 200), uri, data_storage_version="2.0")
lance.write_dataset(tbl(200, 200), uri, mode="append")
lance.dataset(uri).delete("id % 50 = 0")
lance.dataset(uri).optimize.compact_files(target_rows_per_fragment=100000)
lance.write_dataset(tbl(400, 150), uri, mode="append")
lance.dataset(uri).delete("id >= 100 and id < 130 or id = 401")
expect = {"versions": [], "rows": None}
for v in lance.dataset(uri).versions():
    ds = lance.dataset(uri, version=v["version"])
    expect["versions"].append({"version": v["version"], "rows": ds.count_rows()})
expect["rows"] = lance.dataset(uri).to_table().to_pylist()
json.dump(expect, open(os.path.join(out, "mixed.json"), "w"))
uri = os.path.join(out, "bitmap")
lance.write_dataset(pa.table({"id": pa.array(range(9000), pa.int32())}), uri, data_storage_version="2.0")
lance.dataset(uri).delete("id % 9 != 4")
json.dump({"ids": lance.dataset(uri).to_table()["id"].to_pylist()}, open(os.path.join(out, "bitmap.json"), "w"))
uri = os.path.join(out, "defaultfmt")
lance.write_dataset(pa.table({"id": pa.array([1, 2, 3], pa.int64())}), uri)
print("default dataset storage:", lance.dataset(uri).data_storage_version)
