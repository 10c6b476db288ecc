"""BibTeX for the card's citation section: the IMDb dataset always, the base model's paper when known.

The base model is recognised by name (Hub id or local folder and its `_name_or_path`), so a
local copy of a known model still cites the right paper.
"""

from __future__ import annotations

from model_card.names import BaseModel

IMDB = """@inproceedings{maas-etal-2011-learning,
  title     = {Learning Word Vectors for Sentiment Analysis},
  author    = {Maas, Andrew L. and Daly, Raymond E. and Pham, Peter T. and Huang, Dan and Ng, Andrew Y. and Potts, Christopher},
  booktitle = {Proceedings of the 49th Annual Meeting of the Association for Computational Linguistics: Human Language Technologies},
  year      = {2011},
  address   = {Portland, Oregon, USA},
  publisher = {Association for Computational Linguistics},
  pages     = {142--150},
  url       = {https://aclanthology.org/P11-1015}
}"""

DISTILBERT = """@article{sanh2019distilbert,
  title   = {DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter},
  author  = {Sanh, Victor and Debut, Lysandre and Chaumond, Julien and Wolf, Thomas},
  journal = {arXiv preprint arXiv:1910.01108},
  year    = {2019}
}"""

BERT = """@inproceedings{devlin-etal-2019-bert,
  title     = {{BERT}: Pre-training of Deep Bidirectional Transformers for Language Understanding},
  author    = {Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina},
  booktitle = {Proceedings of NAACL-HLT 2019},
  year      = {2019},
  pages     = {4171--4186},
  url       = {https://aclanthology.org/N19-1423}
}"""

ROBERTA = """@article{liu2019roberta,
  title   = {RoBERTa: A Robustly Optimized BERT Pretraining Approach},
  author  = {Liu, Yinhan and Ott, Myle and Goyal, Naman and Du, Jingfei and Joshi, Mandar and Chen, Danqi and Levy, Omer and Lewis, Mike and Zettlemoyer, Luke and Stoyanov, Veselin},
  journal = {arXiv preprint arXiv:1907.11692},
  year    = {2019}
}"""

MINILM = """@inproceedings{wang2020minilm,
  title     = {MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained Transformers},
  author    = {Wang, Wenhui and Wei, Furu and Dong, Li and Bao, Hangbo and Yang, Nan and Zhou, Ming},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {33},
  pages     = {5776--5788},
  year      = {2020}
}"""

SBERT = """@inproceedings{reimers-gurevych-2019-sentence,
  title     = {Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks},
  author    = {Reimers, Nils and Gurevych, Iryna},
  booktitle = {Proceedings of EMNLP-IJCNLP 2019},
  year      = {2019},
  pages     = {3982--3992},
  url       = {https://aclanthology.org/D19-1410}
}"""

LORA = """@inproceedings{hu2022lora,
  title     = {LoRA: Low-Rank Adaptation of Large Language Models},
  author    = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi and Wang, Shean and Wang, Lu and Chen, Weizhu},
  booktitle = {International Conference on Learning Representations},
  year      = {2022},
  url       = {https://arxiv.org/abs/2106.09685}
}"""

# First match wins: the more specific names come before the families they belong to.
BASE_MODELS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("all-minilm", "all_minilm", "sentence-transformers"), (SBERT, MINILM)),
    (("minilm",), (MINILM,)),
    (("distilbert",), (DISTILBERT,)),
    (("roberta",), (ROBERTA,)),
    (("bert",), (BERT,)),
)


def citations_for(base: BaseModel, method: str, model_type: str | None = None) -> list[str]:
    """IMDb, then the base model's paper(s) when its name (or else its config's model_type) is recognised,
    then LoRA when it was used."""
    names = " ".join(filter(None, (base.name, base.hub_id, base.name_or_path, model_type))).lower()
    found = next((bibs for keys, bibs in BASE_MODELS if any(k in names for k in keys)), ())
    return [IMDB, *found, *([LORA] if method == "lora" else [])]
