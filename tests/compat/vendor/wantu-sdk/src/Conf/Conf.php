<?php
namespace AliMedia\Conf;

class Conf
{
    const CHARSET = "UTF-8";
    const SDK_VERSION = '2.0.3';

    const UPLOAD_HOST_MEDIA = "https://upload.media.aliyun.com";        //文件上传的地址
    const MANAGE_HOST_MEDIA = "https://rs.media.aliyun.com";            //服务管理的地址
    const MANAGE_API_VERSION = "3.0";        //资源管理接口版本
    const SCAN_PORN_VERSION = "3.1";        //黄图扫描接口版本
    const MEDIA_ENCODE_VERSION = "3.0";        //媒体转码接口版本

    const UPLOAD_API_UPLOAD = "/api/proxy/upload";
    const UPLOAD_API_BLOCK_INIT = "/api/proxy/blockInit";
    const UPLOAD_API_BLOCK_UPLOAD = "/api/proxy/blockUpload";
    const UPLOAD_API_BLOCK_COMPLETE = "/api/proxy/blockComplete";
    const UPLOAD_API_BLOCK_CANCEL = "/api/proxy/blockCancel";

    const TYPE_TOP = "TOP";
    const TYPE_CLOUD = "CLOUD";

    const DETECT_MIME_TRUE = 1;            //检测MimeType
    const DETECT_MIME_NONE = 0;            //不检测MimeType
    const INSERT_ONLY_TRUE = 1;            //文件上传不可覆盖
    const INSERT_ONLY_NONE = 0;            //文件上传可覆盖

    const MIN_OBJ_SIZE = 1;        //1024*100;
    const HTTP_TIMEOUT = 30;            //http的超时时间：30s
    const HTTP_RETRY = 1;                //http失败后重试：1

    const BLOCK_MIN_SIZE = 102400;        //文件分片最小值：1024*100; 100K
    const BLOCK_DEFF_SIZE = 209715200;    //文件分片默认值：1024*1024*2; 2M
    const BLOCK_MAX_SIZE = 104857600;    //文件分片最大值：1024*1024*10; 10M

    const CURL_ERR_LOG = "curl_error.log";    //curl请求时的错误日志信息

    const RUN_LEVEL_RELEASE = 1;        //release级别
    const RUN_LEVEL_DEBUG = 2;            //debug级别
}
