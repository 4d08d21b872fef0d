"""Test vectors WeChat published in its documentation."""

# WeChat's WXBizDataCrypt demo (开放数据校验与解密), reproduced in every SDK's tests.
DEMO_APPID = "wx4f4bc4dec97d474b"
DEMO_SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
DEMO_IV = "r7BXXKkLb8qrSNn05n0qiA=="
DEMO_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poO"
    "FtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8"
    "xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB"
    "6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJd"
    "NiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOy"
    "uxINew=="
)
DEMO_OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"

# The rawData signature example from the same docs (reference §6).
RAW_DATA = (
    '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong",'
    '"country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7'
    'bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}'
)
RAW_SESSION_KEY = "HyVFkGl5F5OQWJZZaNzBBg=="
RAW_SIGNATURE = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
